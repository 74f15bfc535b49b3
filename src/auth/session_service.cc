#include "auth/session_service.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "auth/token_service.h"
#include "common/log.h"
#include "common/random.h"

namespace vireo {

namespace {

constexpr size_t kTokenBytes = 32;  // 256 bits
constexpr int64_t kTouchInterval = 60;
// Bounds memory when someone sprays logins for random names.
constexpr size_t kMaxTrackedNames = 10000;

bool IsLowerHex(const std::string& s) {
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f'))
      return false;
  return true;
}

tl::unexpected<Error> NotAuthenticated() {
  return Err(ErrorCode::kUnauthenticated,
             "session expired or invalid; log in again");
}

}  // namespace

SessionService::SessionService(Store* store, UserService* users,
                               Options options)
    : store_(store), users_(users), options_(std::move(options)) {}

int64_t SessionService::Now() const {
  return options_.now ? options_.now() : static_cast<int64_t>(::time(nullptr));
}

int64_t SessionService::ExpiresAt(const Json& doc) const {
  const int64_t idle =
      doc.value("last_seen", int64_t{0}) + options_.idle_timeout_s;
  const int64_t absolute =
      doc.value("created_at", int64_t{0}) + options_.absolute_timeout_s;
  return std::min(idle, absolute);
}

int64_t SessionService::RetryAfter(const std::string& user) {
  std::lock_guard lock(mu_);
  auto it = failures_.find(user);
  if (it == failures_.end()) return 0;
  const int64_t left = it->second.locked_until - Now();
  return left > 0 ? left : 0;
}

void SessionService::RecordFailure(const std::string& user) {
  std::lock_guard lock(mu_);
  if (failures_.size() >= kMaxTrackedNames && !failures_.count(user)) {
    // Forget names that are not locked out; they only hold counts.
    const int64_t now = Now();
    for (auto it = failures_.begin(); it != failures_.end();) {
      it = it->second.locked_until > now ? std::next(it) : failures_.erase(it);
    }
    if (failures_.size() >= kMaxTrackedNames) failures_.clear();
  }
  Failures& f = failures_[user];
  if (++f.count >= options_.max_failures) {
    f.count = 0;
    f.locked_until = Now() + options_.lockout_s;
    LOG_WARN("login: {} failed attempts for user '{}'; refusing it for {} s",
             options_.max_failures, user, options_.lockout_s);
  }
}

Result<Session> SessionService::Login(const std::string& user,
                                      const std::string& password) {
  if (int64_t wait = RetryAfter(user); wait > 0) {
    return Err(ErrorCode::kResourceExhausted,
               "too many failed logins for this user; try again in " +
                   std::to_string(wait) + " s");
  }
  auto checked = users_->CheckPassword(user, password);
  if (!checked) {
    if (checked.error().code() == ErrorCode::kUnauthenticated)
      RecordFailure(user);
    return tl::unexpected(checked.error());
  }
  {
    std::lock_guard lock(mu_);
    failures_.erase(user);
  }
  Purge();
  Session s;
  s.token = RandomHex(kTokenBytes);
  s.user = checked->name;
  s.role = checked->role;
  s.created_at = Now();
  const std::string key = Sha256Hex(s.token);
  // "id" repeats the key: lists return documents only, and Purge and
  // RevokeUser delete by it.
  Json doc = {{"id", key},
              {"user", s.user},
              {"created_at", s.created_at},
              {"last_seen", s.created_at}};
  s.expires_at = ExpiresAt(doc);
  TRY_CTX(store_->CreateObject(kKind, key, doc), "create session");
  LOG_INFO("login: user '{}' logged in", s.user);
  return s;
}

Result<Session> SessionService::Authenticate(const std::string& token) {
  if (token.size() != kTokenBytes * 2 || !IsLowerHex(token))
    return NotAuthenticated();
  const std::string key = Sha256Hex(token);
  auto doc = store_->GetObject(kKind, key);
  if (!doc) {
    if (doc.error().code() == ErrorCode::kNotFound) return NotAuthenticated();
    return tl::unexpected(doc.error());
  }
  const int64_t now = Now();
  if (ExpiresAt(*doc) <= now) {
    (void)store_->DeleteObject(kKind, key);
    return NotAuthenticated();
  }
  const std::string name = doc->value("user", "");
  auto user = users_->Get(name);
  if (!user) {
    if (user.error().code() == ErrorCode::kNotFound) {
      (void)store_->DeleteObject(kKind, key);
      return NotAuthenticated();
    }
    return tl::unexpected(user.error());
  }
  if (now - doc->value("last_seen", int64_t{0}) >= kTouchInterval) {
    (*doc)["last_seen"] = now;
    // Losing a refresh only shortens the idle window by a minute.
    (void)store_->UpdateObject(kKind, key, *doc);
  }
  Session s;
  s.user = user->name;
  s.role = user->role;
  s.created_at = doc->value("created_at", int64_t{0});
  s.expires_at = ExpiresAt(*doc);
  return s;
}

Status SessionService::Logout(const std::string& token) {
  if (token.size() != kTokenBytes * 2 || !IsLowerHex(token)) return Ok();
  auto st = store_->DeleteObject(kKind, Sha256Hex(token));
  if (!st && st.error().code() != ErrorCode::kNotFound) return st;
  return Ok();
}

Status SessionService::RevokeUser(const std::string& user,
                                  const std::string& keep_token) {
  const std::string keep = keep_token.empty() ? "" : Sha256Hex(keep_token);
  ASSIGN_OR_RETURN(auto docs, store_->ListObjects(kKind));
  for (const auto& d : docs) {
    if (d.value("user", "") != user || d.value("id", "") == keep) continue;
    auto st = store_->DeleteObject(kKind, d.value("id", ""));
    if (!st && st.error().code() != ErrorCode::kNotFound) return st;
  }
  return Ok();
}

void SessionService::Purge() {
  auto docs = store_->ListObjects(kKind);
  if (!docs) return;
  const int64_t now = Now();
  for (const auto& d : *docs) {
    if (ExpiresAt(d) <= now)
      (void)store_->DeleteObject(kKind, d.value("id", ""));
  }
}

}  // namespace vireo
