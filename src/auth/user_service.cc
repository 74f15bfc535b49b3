#include "auth/user_service.h"

#include <ctime>

#include "auth/password_hash.h"

namespace vireo {

namespace {

constexpr size_t kMaxNameLength = 32;
constexpr size_t kMinPassword = 8;
constexpr size_t kMaxPassword = 1024;
constexpr const char* kBadCredentials = "invalid user name or password";

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

User FromJson(const Json& j) {
  User u;
  u.name = j.value("name", "");
  u.role = j.value("role", "user");
  u.created_at = j.value("created_at", int64_t{0});
  u.password_changed_at = j.value("password_changed_at", int64_t{0});
  return u;
}

// A valid hash of a random password: checking an unknown user's password
// against it takes as long as a real check, so timing does not tell which
// names exist.
const std::string& DummyHash() {
  static const std::string hash = [] {
    auto h = HashPassword("vireo-dummy-password-never-matches");
    return h ? *h : std::string();
  }();
  return hash;
}

}  // namespace

Json UserJson(const User& user) {
  return {{"name", user.name},
          {"role", user.role},
          {"created_at", user.created_at},
          {"password_changed_at", user.password_changed_at}};
}

Status UserService::ValidateName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength)
    return Err(ErrorCode::kInvalidArgument,
               "user name must be 1-32 characters");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok)
      return Err(ErrorCode::kInvalidArgument,
                 "invalid user name '" + name +
                     "': allowed characters are [a-z0-9_.-]");
  }
  const char first = name.front();
  if (!((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9')))
    return Err(ErrorCode::kInvalidArgument,
               "invalid user name '" + name +
                   "': it must start with a letter or a digit");
  return Ok();
}

Status UserService::ValidateRole(const std::string& role) {
  if (role == "admin" || role == "user") return Ok();
  return Err(ErrorCode::kInvalidArgument,
             "invalid role '" + role + "': expected 'admin' or 'user'");
}

Status UserService::ValidatePassword(const std::string& password) {
  if (password.size() < kMinPassword)
    return Err(ErrorCode::kInvalidArgument,
               "password must be at least 8 characters");
  if (password.size() > kMaxPassword)
    return Err(ErrorCode::kInvalidArgument,
               "password must be at most 1024 characters");
  return Ok();
}

Result<User> UserService::Create(const std::string& name,
                                 const std::string& password,
                                 const std::string& role) {
  TRY(ValidateName(name));
  TRY(ValidateRole(role));
  TRY(ValidatePassword(password));
  ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
  User u{name, role, Now(), Now()};
  Json doc = UserJson(u);
  doc["password_hash"] = hash;
  std::lock_guard lock(mu_);
  auto st = store_->CreateObject(kKind, name, doc);
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists)
      return Err(ErrorCode::kAlreadyExists,
                 "user '" + name + "' already exists");
    return tl::unexpected(st.error());
  }
  return u;
}

Result<std::vector<User>> UserService::List() {
  ASSIGN_OR_RETURN(auto docs, store_->ListObjects(kKind));
  std::vector<User> out;
  out.reserve(docs.size());
  for (const auto& d : docs) out.push_back(FromJson(d));
  return out;
}

Result<User> UserService::Get(const std::string& name) {
  TRY(ValidateName(name));
  auto doc = store_->GetObject(kKind, name);
  if (!doc) {
    if (doc.error().code() == ErrorCode::kNotFound)
      return Err(ErrorCode::kNotFound, "user '" + name + "' not found");
    return tl::unexpected(doc.error());
  }
  return FromJson(*doc);
}

Status UserService::Delete(const std::string& name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(User target, Get(name));
  if (target.role == "admin") {
    ASSIGN_OR_RETURN(auto all, List());
    int admins = 0;
    for (const auto& u : all) admins += u.role == "admin" ? 1 : 0;
    if (admins <= 1)
      return Err(ErrorCode::kFailedPrecondition,
                 "user '" + name +
                     "' is the last admin; create another "
                     "admin first");
  }
  return store_->DeleteObject(kKind, name);
}

Status UserService::SetPassword(const std::string& name,
                                const std::string& password) {
  TRY(ValidatePassword(password));
  ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
  std::lock_guard lock(mu_);
  TRY(ValidateName(name));
  auto doc = store_->GetObject(kKind, name);
  if (!doc) {
    if (doc.error().code() == ErrorCode::kNotFound)
      return Err(ErrorCode::kNotFound, "user '" + name + "' not found");
    return tl::unexpected(doc.error());
  }
  (*doc)["password_hash"] = hash;
  (*doc)["password_changed_at"] = Now();
  return store_->UpdateObject(kKind, name, *doc);
}

Result<User> UserService::SetOrCreateAdmin(const std::string& name,
                                           const std::string& password) {
  auto existing = Get(name);
  if (existing) {
    TRY(SetPassword(name, password));
    return Get(name);
  }
  if (existing.error().code() != ErrorCode::kNotFound)
    return tl::unexpected(existing.error());
  return Create(name, password, "admin");
}

Result<User> UserService::CheckPassword(const std::string& name,
                                        const std::string& password) {
  Result<Json> doc = Err(ErrorCode::kNotFound, "no such user");
  if (ValidateName(name) && password.size() <= kMaxPassword)
    doc = store_->GetObject(kKind, name);
  if (!doc && doc.error().code() != ErrorCode::kNotFound)
    return tl::unexpected(doc.error());
  const std::string hash =
      doc ? doc->value("password_hash", std::string()) : DummyHash();
  // Always hash, even for an unknown name; then decide.
  const bool match =
      VerifyPassword(hash, password.substr(0, kMaxPassword)) && doc;
  if (!match) return Err(ErrorCode::kUnauthenticated, kBadCredentials);
  return FromJson(*doc);
}

Result<bool> UserService::Empty() {
  ASSIGN_OR_RETURN(auto docs, store_->ListObjects(kKind));
  return docs.empty();
}

}  // namespace vireo
