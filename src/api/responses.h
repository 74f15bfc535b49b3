#pragma once

#include <string>

#include "api/router.h"
#include "common/error.h"
#include "common/json.h"
#include "core/operations.h"

namespace vireo {

// The HTTP status for a stable error code (docs/api.md).
unsigned HttpStatusFor(ErrorCode code);

// Envelopes of docs/api.md.
ApiResponse SyncResponse(Json metadata, unsigned status = 200);
ApiResponse AsyncResponse(const Operation& op);
ApiResponse ErrorResponse(const Error& error);
ApiResponse ErrorResponse(unsigned status, std::string_view code,
                          const std::string& message);

// Query helpers: absent keys give the default; bad values are
// kInvalidArgument naming the parameter.
Result<bool> QueryBool(const ApiRequest& request, const std::string& key,
                       bool fallback);
Result<int64_t> QueryNonNegative(const ApiRequest& request,
                                 const std::string& key, int64_t fallback,
                                 int64_t max);

}  // namespace vireo
