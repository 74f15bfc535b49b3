#include "core/console_tickets.h"

#include <ctime>

#include "common/random.h"

namespace vireo {

namespace {
constexpr size_t kSecretBytes = 32;
constexpr std::string_view kRefused = "invalid, used or expired console secret";
}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length of a secret is public (always 64 hex digits); the contents
  // are compared without an early exit.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

ConsoleTickets::Issued ConsoleTickets::Issue(ConsoleTarget target) {
  Issued issued;
  issued.key = RandomHex(16);
  issued.secret = RandomHex(kSecretBytes);
  const auto ttl_s = std::chrono::ceil<std::chrono::seconds>(ttl_).count();
  issued.expires_at = static_cast<int64_t>(::time(nullptr)) + ttl_s;
  Ticket ticket;
  ticket.secret = issued.secret;
  ticket.target = std::move(target);
  ticket.expires = std::chrono::steady_clock::now() + ttl_;
  std::lock_guard lock(mu_);
  tickets_[issued.key] = std::move(ticket);
  return issued;
}

void ConsoleTickets::Bind(const std::string& key,
                          const std::string& operation_id) {
  std::lock_guard lock(mu_);
  auto it = tickets_.find(key);
  if (it != tickets_.end()) it->second.operation_id = operation_id;
}

Result<ConsoleTickets::Redeemed> ConsoleTickets::Redeem(
    const std::string& operation_id, std::string_view secret) {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  for (auto& [key, ticket] : tickets_) {
    if (ticket.operation_id.empty() || ticket.operation_id != operation_id)
      continue;
    const bool match = ConstantTimeEquals(ticket.secret, secret);
    if (!match || ticket.redeemed || shutdown_ || now >= ticket.expires) break;
    ticket.redeemed = true;
    cv_.notify_all();
    return Redeemed{key, ticket.target};
  }
  return Err(ErrorCode::kPermissionDenied, std::string(kRefused));
}

void ConsoleTickets::Finish(const std::string& key, const std::string& error) {
  std::lock_guard lock(mu_);
  auto it = tickets_.find(key);
  if (it == tickets_.end()) return;
  it->second.finished = true;
  it->second.error = error;
  cv_.notify_all();
}

Result<Json> ConsoleTickets::Await(const std::string& key) {
  std::unique_lock lock(mu_);
  auto it = tickets_.find(key);
  if (it == tickets_.end()) {
    return Err(ErrorCode::kNotFound, "console ticket is gone");
  }
  Ticket& t = it->second;
  // Unused: wait for a client until the ticket expires.
  cv_.wait_until(lock, t.expires, [&] { return t.redeemed || shutdown_; });
  if (!t.redeemed) {
    const std::string type = t.target.type;
    tickets_.erase(it);
    return Err(ErrorCode::kTimeout,
               "nobody connected to the " + type + " console in time");
  }
  cv_.wait(lock, [&] { return t.finished || shutdown_; });
  Json result = {{"type", t.target.type}, {"instance", t.target.instance}};
  const bool finished = t.finished;
  const std::string error = t.error;
  tickets_.erase(it);
  if (!finished) {
    return Err(ErrorCode::kUnavailable, "console relay cut short by shutdown");
  }
  if (!error.empty()) return Err(ErrorCode::kUnavailable, error);
  return result;
}

void ConsoleTickets::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

}  // namespace vireo
