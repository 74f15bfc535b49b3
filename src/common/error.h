#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace vireo {

// Stable error codes: they are part of the API (mapped to HTTP statuses and
// printed by the CLI), so never renumber or rename them.
enum class ErrorCode {
  kInvalidArgument,     // bad input from a user, a guest or the network
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a name is taken
  kFailedPrecondition,  // action illegal in the current state
  kResourceExhausted,   // host capacity or quota exceeded
  kUnauthenticated,     // no or bad credentials
  kPermissionDenied,    // credentials lack the right
  kTooLarge,            // request or payload over a limit
  kTimeout,             // a deadline passed
  kUnavailable,         // a peer (QEMU, a socket) is not reachable
  kIo,                  // a system call failed
  kDataLoss,            // stored data is damaged or missing (failed a check)
  kInternal,            // a bug or an unexpected library failure
};

std::string_view ErrorCodeName(ErrorCode code);

// An error value: a stable code, the errno where one applies, and a message
// with context prepended as it travels up ("start vm1: qmp: connect: ...").
class Error {
 public:
  Error(ErrorCode code, std::string message, int err_no = 0)
      : code_(code), err_no_(err_no), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  int err_no() const { return err_no_; }
  const std::string& message() const { return message_; }

  // Prepends "context: " to the message. Returns *this for chaining.
  Error& WithContext(std::string_view context);
  // Full human-readable text, including the errno description.
  std::string ToString() const;

 private:
  ErrorCode code_;
  int err_no_;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = Result<void>;

inline tl::unexpected<Error> Err(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}
// Builds a kIo error from errno (or the given errno value).
tl::unexpected<Error> ErrnoErr(std::string message, int err_no = errno);

inline Status Ok() { return {}; }

}  // namespace vireo

#define VIREO_CONCAT_INNER_(a, b) a##b
#define VIREO_CONCAT_(a, b) VIREO_CONCAT_INNER_(a, b)

// Returns the error of a Result-valued expression from the current function.
#define TRY(expr)                                \
  do {                                           \
    auto&& vireo_try_result_ = (expr);           \
    if (!vireo_try_result_)                      \
      return ::tl::unexpected<::vireo::Error>(   \
          std::move(vireo_try_result_).error()); \
  } while (0)

// ASSIGN_OR_RETURN(auto x, F()); declares/assigns x or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(VIREO_CONCAT_(vireo_aor_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)                               \
  auto tmp = (expr);                                                         \
  if (!tmp) return ::tl::unexpected<::vireo::Error>(std::move(tmp).error()); \
  lhs = std::move(*tmp)

// Like TRY, but prepends context to the error message.
#define TRY_CTX(expr, ctx)                                            \
  do {                                                                \
    auto&& vireo_try_result_ = (expr);                                \
    if (!vireo_try_result_) {                                         \
      ::vireo::Error vireo_e_ = std::move(vireo_try_result_).error(); \
      vireo_e_.WithContext(ctx);                                      \
      return ::tl::unexpected<::vireo::Error>(std::move(vireo_e_));   \
    }                                                                 \
  } while (0)
