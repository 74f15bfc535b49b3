#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/json.h"

namespace vireo {

// What a console ticket opens: a VM's VNC socket ("vga") or serial socket.
struct ConsoleTarget {
  std::string instance;
  std::string type;    // "vga" or "serial"
  std::string socket;  // unix socket path
};

// One-time credentials for console WebSockets. Browsers cannot send headers
// on a WebSocket, so POST /1.0/instances/{name}/console (authenticated)
// issues a random secret that the WebSocket request then presents. A ticket
// is single use and expires after a short TTL if nobody redeems it.
//
// Each ticket backs one operation of class "websocket": the operation's work
// calls Await(), which returns when the relay that redeemed the ticket ends
// (success) or when the ticket expires unused (failure).
class ConsoleTickets {
 public:
  static constexpr std::chrono::milliseconds kDefaultTtl{30000};

  explicit ConsoleTickets(std::chrono::milliseconds ttl = kDefaultTtl)
      : ttl_(ttl) {}
  ~ConsoleTickets() { Shutdown(); }
  ConsoleTickets(const ConsoleTickets&) = delete;
  ConsoleTickets& operator=(const ConsoleTickets&) = delete;

  struct Issued {
    std::string key;         // internal handle, for Bind/Await
    std::string secret;      // for the client, once
    int64_t expires_at = 0;  // unix seconds, rounded up
  };
  // A new ticket for `target`, valid for the TTL.
  Issued Issue(ConsoleTarget target);
  // Ties the ticket to the operation the client will name in its URL.
  void Bind(const std::string& key, const std::string& operation_id);

  struct Redeemed {
    std::string key;  // pass to Finish() when the session ends
    ConsoleTarget target;
  };
  // Consumes the ticket of `operation_id` if `secret` matches (compared in
  // constant time), it is unused and not expired. Any failure is
  // kPermissionDenied with the same message, so a caller learns nothing.
  [[nodiscard]] Result<Redeemed> Redeem(const std::string& operation_id,
                                        std::string_view secret);
  // The relay of a redeemed ticket ended; `error` empty means cleanly.
  void Finish(const std::string& key, const std::string& error = "");

  // Blocks until the ticket's relay ended or the ticket expired unused, then
  // forgets it. The result is the operation's.
  [[nodiscard]] Result<Json> Await(const std::string& key);
  // Wakes every Await: unused tickets fail at once, relays still running are
  // reported as cut short. For daemon shutdown.
  void Shutdown();

  std::chrono::milliseconds ttl() const { return ttl_; }

 private:
  struct Ticket {
    std::string secret;
    std::string operation_id;
    ConsoleTarget target;
    std::chrono::steady_clock::time_point expires;
    bool redeemed = false;
    bool finished = false;
    std::string error;
  };

  const std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Ticket> tickets_;  // by key
  bool shutdown_ = false;
};

// Equality of two strings in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace vireo
