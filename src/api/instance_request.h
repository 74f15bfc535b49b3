#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/json.h"
#include "core/instance_service.h"

namespace vireo {

// Strict decoding of request bodies: unknown fields, wrong types and negative
// numbers are kInvalidArgument errors that name the field. Semantic checks
// (limits, file existence) stay in the core.

struct StateChangeRequest {
  StateAction action = StateAction::kStart;
  bool force = false;
  int timeout_s = 0;  // 0: the service's default
};

Result<CreateRequest> ParseCreateRequest(std::string_view body);
Result<StateChangeRequest> ParseStateChangeRequest(std::string_view body);
// {"name":"ci"} for POST /1.0/tokens.
Result<std::string> ParseTokenCreateRequest(std::string_view body);

// Building blocks, shared by the parsers above.
Result<Json> ParseJsonObject(std::string_view body);
Status RejectUnknownFields(const Json& object,
                           std::initializer_list<std::string_view> known,
                           std::string_view where = "");

}  // namespace vireo
