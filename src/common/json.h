#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/error.h"

namespace vireo {

using Json = nlohmann::json;

// Parses text as JSON; malformed input is kInvalidArgument, never a throw.
Result<Json> ParseJson(std::string_view text);

}  // namespace vireo
