#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo {

// A client WebSocket to the daemon, on its own connection. Not thread-safe.
class WebSocket {
 public:
  // Ctrl-], as in telnet and virsh console.
  static constexpr char kDefaultEscape = 0x1d;

  virtual ~WebSocket() = default;

  // Blocks for the next message. kUnavailable once the peer closed.
  [[nodiscard]] virtual Result<std::string> Read() = 0;
  // Like Read, but gives up after `timeout` with kTimeout; the WebSocket is
  // closed then (a cancelled read leaves it unusable).
  [[nodiscard]] virtual Result<std::string> ReadFor(
      std::chrono::milliseconds timeout) = 0;
  [[nodiscard]] virtual Status Write(std::string_view data,
                                     bool binary = true) = 0;
  // Sends a close frame (best effort) and closes the connection.
  virtual void Close() = 0;

  // Relays in_fd -> socket and socket -> out_fd until the escape byte is
  // typed (detach), the server closes the socket, or, when in_fd is not a
  // terminal, in_fd ends and the output has been quiet for a moment. A
  // terminal in_fd is put in raw mode for the duration and restored after.
  [[nodiscard]] virtual Status RelayInteractive(
      int in_fd, int out_fd, char escape = kDefaultEscape) = 0;
};

}  // namespace vireo
