#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "auth/user_service.h"
#include "common/error.h"
#include "store/store.h"

namespace vireo {

// The cookie that carries a session token (Secure, HttpOnly,
// SameSite=Strict, Path=/).
inline constexpr std::string_view kSessionCookie = "vireo_session";

// A logged-in browser. The token is the cookie value; only its SHA-256 is
// stored (kind "session", keyed by the hash), so a copy of the database does
// not hold usable sessions, and sessions survive a vireod restart.
struct Session {
  std::string token;  // set by Login only
  std::string user;
  std::string role;  // the user's current role, read at each check
  int64_t created_at = 0;
  int64_t expires_at = 0;  // the earlier of the idle and absolute limits
};

// Too many failed logins for a user: wait `retry_after_s`.
struct LoginThrottled {
  int64_t retry_after_s = 0;
};

class SessionService {
 public:
  static constexpr const char* kKind = "session";
  struct Options {
    int64_t idle_timeout_s = 12 * 3600;
    int64_t absolute_timeout_s = 7 * 24 * 3600;
    int max_failures = 5;    // failed logins in a row for one name...
    int64_t lockout_s = 30;  // ...refuse that name this long
    // Seconds since the epoch; tests move time by hand.
    std::function<int64_t()> now;
  };

  SessionService(Store* store, UserService* users, Options options);
  SessionService(Store* store, UserService* users)
      : SessionService(store, users, Options()) {}

  // kUnauthenticated for bad credentials (one message for both cases);
  // kResourceExhausted while the name is locked out (throttled() tells how
  // long). Creates a session on success.
  [[nodiscard]] Result<Session> Login(const std::string& user,
                                      const std::string& password);
  // Seconds until `user` may try again, 0 if not locked out.
  int64_t RetryAfter(const std::string& user);
  // kUnauthenticated for an unknown, expired or malformed token or a user
  // that no longer exists. Refreshes the idle timer (at most once a minute,
  // to spare the database a write per request).
  [[nodiscard]] Result<Session> Authenticate(const std::string& token);
  // Deleting an unknown session is not an error.
  [[nodiscard]] Status Logout(const std::string& token);
  // Ends every session of a user (deleted, or a new password) but
  // keep_token's.
  [[nodiscard]] Status RevokeUser(const std::string& user,
                                  const std::string& keep_token = "");
  // Deletes expired sessions.
  void Purge();

 private:
  int64_t Now() const;
  int64_t ExpiresAt(const Json& doc) const;
  void RecordFailure(const std::string& user);

  Store* store_;
  UserService* users_;
  Options options_;

  struct Failures {
    int count = 0;
    int64_t locked_until = 0;
  };
  std::mutex mu_;  // guards failures_
  std::map<std::string, Failures> failures_;
};

}  // namespace vireo
