#include "api/responses.h"

#include <charconv>

namespace vireo {

unsigned HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kResourceExhausted:
      return 422;
    case ErrorCode::kTimeout:
      return 504;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kIo:
      return 500;
    case ErrorCode::kDataLoss:
      return 500;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

ApiResponse SyncResponse(Json metadata, unsigned status) {
  Json j = {{"type", "sync"},
            {"status", "Success"},
            {"status_code", 200},
            {"metadata", std::move(metadata)}};
  ApiResponse response;
  response.status = status;
  response.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

ApiResponse AsyncResponse(const Operation& op) {
  const std::string url = "/1.0/operations/" + op.id;
  Json j = {{"type", "async"},
            {"status", "Operation created"},
            {"status_code", 100},
            {"operation", url},
            {"metadata", ToJson(op)}};
  ApiResponse response;
  response.status = 202;
  response.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  response.headers["Location"] = url;
  return response;
}

ApiResponse ErrorResponse(unsigned status, std::string_view code,
                          const std::string& message) {
  Json j = {{"type", "error"},
            {"error", message},
            {"error_code", status},
            {"code", code}};
  ApiResponse response;
  response.status = status;
  // Messages may quote user input that is not valid UTF-8.
  response.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

ApiResponse ErrorResponse(const Error& error) {
  return ErrorResponse(HttpStatusFor(error.code()), ErrorCodeName(error.code()),
                       error.ToString());
}

Result<bool> QueryBool(const ApiRequest& request, const std::string& key,
                       bool fallback) {
  auto it = request.query.find(key);
  if (it == request.query.end()) return fallback;
  const std::string& v = it->second;
  if (v.empty() || v == "1" || v == "true") return true;
  if (v == "0" || v == "false") return false;
  return Err(ErrorCode::kInvalidArgument,
             "query parameter '" + key + "' must be 0, 1, true or false");
}

Result<int64_t> QueryNonNegative(const ApiRequest& request,
                                 const std::string& key, int64_t fallback,
                                 int64_t max) {
  auto it = request.query.find(key);
  if (it == request.query.end()) return fallback;
  const std::string& v = it->second;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  if (v.empty() || ec != std::errc() || end != v.data() + v.size() ||
      value < 0) {
    return Err(ErrorCode::kInvalidArgument,
               "query parameter '" + key + "' must be a non-negative integer");
  }
  return std::min(value, max);
}

}  // namespace vireo
