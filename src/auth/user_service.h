#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "store/store.h"

namespace vireo {

// A web UI / API user. The password hash never leaves UserService.
struct User {
  std::string name;
  std::string role;  // "admin" | "user"
  int64_t created_at = 0;
  int64_t password_changed_at = 0;
};

Json UserJson(const User& user);

// Users with passwords, stored as Store objects of kind "user" keyed by
// name: {"name","role","password_hash","created_at","password_changed_at"}.
// Passwords are argon2id hashes with per-user salts (auth/password_hash.h).
class UserService {
 public:
  static constexpr const char* kKind = "user";
  explicit UserService(Store* store) : store_(store) {}

  // 1-32 of [a-z0-9_.-], starting with a letter or digit (names appear in
  // URLs, cookies' identities and logs).
  static Status ValidateName(const std::string& name);
  static Status ValidateRole(const std::string& role);
  // 8-1024 bytes: long enough to matter, short enough to bound hashing work.
  static Status ValidatePassword(const std::string& password);

  [[nodiscard]] Result<User> Create(const std::string& name,
                                    const std::string& password,
                                    const std::string& role);
  [[nodiscard]] Result<std::vector<User>> List();
  [[nodiscard]] Result<User> Get(const std::string& name);
  // Refuses to delete the last admin (kFailedPrecondition).
  [[nodiscard]] Status Delete(const std::string& name);
  [[nodiscard]] Status SetPassword(const std::string& name,
                                   const std::string& password);
  // Creates the user as admin when absent; sets the password otherwise
  // (used by `vireod --init-admin`).
  [[nodiscard]] Result<User> SetOrCreateAdmin(const std::string& name,
                                              const std::string& password);
  // kUnauthenticated with one message for an unknown user and a wrong
  // password; an unknown user costs the same hashing work as a known one.
  [[nodiscard]] Result<User> CheckPassword(const std::string& name,
                                           const std::string& password);
  [[nodiscard]] Result<bool> Empty();

 private:
  Store* store_;
  std::mutex mu_;  // serializes create/delete/password writes
};

}  // namespace vireo
