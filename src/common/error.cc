#include "common/error.h"

#include <cstring>

namespace vireo {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCode::kResourceExhausted:
      return "resource_exhausted";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kDataLoss:
      return "data_loss";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

Error& Error::WithContext(std::string_view context) {
  message_ = std::string(context) + ": " + message_;
  return *this;
}

std::string Error::ToString() const {
  if (err_no_ == 0) return message_;
  return message_ + ": " + std::strerror(err_no_);
}

tl::unexpected<Error> ErrnoErr(std::string message, int err_no) {
  return tl::unexpected<Error>(
      Error(ErrorCode::kIo, std::move(message), err_no));
}

}  // namespace vireo
