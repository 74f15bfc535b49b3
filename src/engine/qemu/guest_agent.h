#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/fd.h"
#include "common/json.h"

namespace vireo {

// A connection to qemu-guest-agent (QGA) through the VM's agent chardev (a
// unix socket QEMU serves; the guest end is the virtio-serial port
// org.qemu.guest_agent.0).
//
// QGA has no greeting, and the channel may hold garbage: half a request from
// an earlier client, or a reply nobody read. So every connection starts with
// guest-sync-delimited: we send 0xFF (resets the agent's JSON parser) and the
// sync request with a random id; the agent answers 0xFF followed by the id,
// and everything before that is discarded. An absent or hung agent shows up
// as a sync timeout, which is why that timeout is short (QEMU accepts the
// connection even when nothing runs in the guest).
//
// Not thread-safe: one caller at a time (the engine serializes per VM, and
// QEMU serves one client per chardev anyway).
class GuestAgentClient {
 public:
  // How long an agent may take to answer guest-sync before it counts as
  // absent.
  static constexpr std::chrono::milliseconds kSyncTimeout{1500};

  // Connects and syncs. kNotFound when the socket does not exist (a VM
  // started without the agent channel), kTimeout when nothing answers.
  static Result<std::unique_ptr<GuestAgentClient>> Connect(
      const std::string& socket_path,
      std::chrono::milliseconds sync_timeout = kSyncTimeout);
  // Syncs over an already connected stream socket (tests use a socketpair).
  static Result<std::unique_ptr<GuestAgentClient>> FromFd(
      UniqueFd fd, std::chrono::milliseconds sync_timeout = kSyncTimeout);

  // Runs one command and returns its "return" value. Agent errors become
  // kInvalidArgument (CommandNotFound) or kFailedPrecondition with the
  // agent's description; no reply in time is kTimeout (the next Execute
  // syncs again, so a late reply is not mistaken for its answer).
  [[nodiscard]] Result<Json> Execute(
      const std::string& command, const Json& arguments = Json::object(),
      std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  using Clock = std::chrono::steady_clock;

  explicit GuestAgentClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Sync(std::chrono::milliseconds timeout);
  Status Send(std::string_view bytes, Clock::time_point deadline);
  // The next complete line (without '\n'); false on timeout or close.
  Result<std::string> ReadLine(Clock::time_point deadline);

  UniqueFd fd_;
  std::string buffer_;  // bytes received but not yet consumed
  int64_t next_id_ = 1;
  bool synced_ = false;
};

// Parses one reply line of the agent: its "return" value or its error.
// nullopt: not the answer to request `id` (a reply carrying another "id",
// left over from an earlier timed-out call), to be skipped. Replies without
// an "id" are taken as ours: after a sync, answers come in order.
[[nodiscard]] std::optional<Result<Json>> ParseAgentReply(std::string_view line,
                                                          int64_t id);

}  // namespace vireo
