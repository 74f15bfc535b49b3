#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo {

// Parses "512M", "2G", "1GiB", "1048576" (bytes) into bytes. Binary units.
// Rejects negatives, garbage and values over 2^50 (1 PiB).
Result<uint64_t> ParseSize(std::string_view text);
// 536870912 -> "512MiB".
std::string FormatSize(uint64_t bytes);

}  // namespace vireo
