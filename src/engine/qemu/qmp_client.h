#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/fd.h"
#include "common/json.h"

namespace vireo {

// A QMP (QEMU Machine Protocol) connection. A reader thread matches replies
// to commands by "id" and hands asynchronous events to the event handler,
// so Execute() may be called from several threads at once.
//
// Handlers run on the reader thread: they must not call Execute() or
// destroy the client (a reply cannot be read while the reader is busy).
class QmpClient {
 public:
  using EventHandler =
      std::function<void(const std::string& event, const Json& data)>;
  using CloseHandler = std::function<void()>;

  // Connects to QEMU's QMP unix socket, retrying until `timeout` because
  // QEMU creates the socket a moment after it starts. `give_up` is polled
  // between attempts (e.g. "the QEMU process already exited").
  static Result<std::unique_ptr<QmpClient>> Connect(
      const std::string& socket_path, std::chrono::milliseconds timeout,
      std::function<bool()> give_up = {});
  // Runs the handshake on an already connected stream socket.
  static Result<std::unique_ptr<QmpClient>> FromFd(
      UniqueFd fd, std::chrono::milliseconds timeout);
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  void SetEventHandler(EventHandler handler);
  // Called once when the peer closes the connection or breaks the protocol
  // (not when this client is destroyed). A handler set after the close is
  // called at once.
  void SetCloseHandler(CloseHandler handler);

  // Sends a command and waits for its reply. QMP errors become
  // kInvalidArgument/kNotFound/kFailedPrecondition with QEMU's description;
  // a closed connection is kUnavailable; no reply in time is kTimeout.
  // pass_fd >= 0 is sent along with the command (SCM_RIGHTS), for commands
  // such as add-fd that take a file descriptor.
  [[nodiscard]] Result<Json> Execute(
      const std::string& command, const Json& arguments = Json::object(),
      std::chrono::milliseconds timeout = std::chrono::seconds(10),
      int pass_fd = -1);

  // Waits until the reader has seen the end of the stream and finished: every
  // event QEMU sent and the close handler have been delivered. False on
  // timeout.
  bool WaitClosed(std::chrono::milliseconds timeout);
  bool closed() const;
  const Json& greeting() const { return greeting_; }

 private:
  struct Pending {
    std::optional<Result<Json>> result;
  };

  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Handshake(std::chrono::milliseconds timeout);
  void ReaderLoop();
  // Handles one complete line; false on a protocol violation.
  bool HandleLine(std::string_view line, std::string* error);
  void DeliverReply(int64_t id, Result<Json> result);
  void MarkClosed(const std::string& reason);

  UniqueFd fd_;
  Json greeting_;
  std::string buffer_;  // bytes read but not yet a complete line

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Pending> pending_;
  int64_t next_id_ = 1;
  bool closed_ = false;
  bool reader_done_ = false;  // closed and the close handler has run
  bool stopping_ = false;
  std::string close_reason_;
  EventHandler event_handler_;
  CloseHandler close_handler_;

  std::mutex write_mu_;
  std::thread reader_;
};

}  // namespace vireo
