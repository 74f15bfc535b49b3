#include "engine/qemu/guest_agent.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>

#include "common/random.h"

namespace vireo {
namespace {

// The agent's sync delimiter: an invalid UTF-8 byte, so it never appears
// inside JSON; sent by us it resets the agent's parser.
constexpr char kDelimiter = '\xff';
// A reply longer than this is not from the agent; refuse to buffer it.
constexpr size_t kMaxLineBytes = 16u << 20;

int MillisLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max<int64_t>(left.count(), 0);
}

Error AgentError(const Json& error) {
  std::string cls = "GenericError";
  std::string desc = "unknown guest agent error";
  if (error.is_object()) {
    if (auto c = error.find("class"); c != error.end() && c->is_string())
      cls = c->get<std::string>();
    if (auto d = error.find("desc"); d != error.end() && d->is_string())
      desc = d->get<std::string>();
  }
  ErrorCode code = cls == "CommandNotFound" ? ErrorCode::kInvalidArgument
                                            : ErrorCode::kFailedPrecondition;
  return Error(code, "guest agent: " + desc);
}

int64_t RandomSyncId() {
  unsigned char b[4];
  RandomBytes(b, sizeof b);
  // Positive and within 31 bits: the agent echoes it as a JSON integer.
  return ((int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) &
         0x7fffffff;
}

}  // namespace

std::optional<Result<Json>> ParseAgentReply(std::string_view line, int64_t id) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.remove_suffix(1);
  auto parsed = ParseJson(line);
  if (!parsed || !parsed->is_object()) {
    return Err(ErrorCode::kInvalidArgument,
               "guest agent: bad reply: " + std::string(line.substr(0, 200)));
  }
  const Json& msg = *parsed;
  if (auto i = msg.find("id"); i != msg.end()) {
    if (!i->is_number_integer() || i->get<int64_t>() != id) return std::nullopt;
  }
  if (auto r = msg.find("return"); r != msg.end()) return Result<Json>(*r);
  if (auto e = msg.find("error"); e != msg.end())
    return Result<Json>(tl::unexpected(AgentError(*e)));
  return Err(ErrorCode::kInvalidArgument,
             "guest agent: reply has neither return nor error");
}

Result<std::unique_ptr<GuestAgentClient>> GuestAgentClient::Connect(
    const std::string& socket_path, std::chrono::milliseconds sync_timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return Err(ErrorCode::kInvalidArgument,
               "guest agent: socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoErr("guest agent: socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    if (errno == ENOENT) {
      return Err(ErrorCode::kNotFound,
                 "the VM has no guest agent channel (started before Vireo "
                 "added one?)");
    }
    return ErrnoErr("guest agent: connect " + socket_path);
  }
  return FromFd(std::move(fd), sync_timeout);
}

Result<std::unique_ptr<GuestAgentClient>> GuestAgentClient::FromFd(
    UniqueFd fd, std::chrono::milliseconds sync_timeout) {
  std::unique_ptr<GuestAgentClient> client(new GuestAgentClient(std::move(fd)));
  TRY(client->Sync(sync_timeout));
  return client;
}

Status GuestAgentClient::Send(std::string_view bytes,
                              Clock::time_point deadline) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(),
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // QEMU stops reading the chardev while the guest port is not open.
      pollfd p{fd_.get(), POLLOUT, 0};
      int r = ::poll(&p, 1, MillisLeft(deadline));
      if (r == 0)
        return Err(ErrorCode::kTimeout, "guest agent: send timed out");
      if (r < 0 && errno != EINTR) return ErrnoErr("guest agent: poll");
      continue;
    }
    return ErrnoErr("guest agent: send");
  }
  return Ok();
}

Result<std::string> GuestAgentClient::ReadLine(Clock::time_point deadline) {
  size_t newline;
  while ((newline = buffer_.find('\n')) == std::string::npos) {
    if (buffer_.size() > kMaxLineBytes)
      return Err(ErrorCode::kInvalidArgument, "guest agent: reply too long");
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, MillisLeft(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoErr("guest agent: poll");
    if (r == 0) return Err(ErrorCode::kTimeout, "guest agent: no reply");
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return ErrnoErr("guest agent: read");
    if (n == 0)
      return Err(ErrorCode::kUnavailable, "guest agent: connection closed");
    buffer_.append(buf, static_cast<size_t>(n));
  }
  std::string line = buffer_.substr(0, newline);
  buffer_.erase(0, newline + 1);
  return line;
}

Status GuestAgentClient::Sync(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  int64_t id = RandomSyncId();
  Json request = {{"execute", "guest-sync-delimited"},
                  {"arguments", {{"id", id}}}};
  std::string bytes = std::string(1, kDelimiter) + request.dump() + "\n";
  auto timed_out = [&] {
    return Err(ErrorCode::kTimeout, "no answer to guest-sync within " +
                                        std::to_string(timeout.count()) +
                                        " ms");
  };
  if (auto sent = Send(bytes, deadline); !sent) {
    if (sent.error().code() == ErrorCode::kTimeout) return timed_out();
    return sent;
  }
  buffer_.clear();
  while (true) {
    // Everything up to the agent's delimiter is stale: replies to earlier
    // clients, or the agent's complaint about a half request.
    size_t delim;
    while ((delim = buffer_.find(kDelimiter)) == std::string::npos) {
      buffer_.clear();
      pollfd p{fd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, MillisLeft(deadline));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoErr("guest agent: poll");
      if (r == 0) return timed_out();
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return ErrnoErr("guest agent: read");
      if (n == 0)
        return Err(ErrorCode::kUnavailable,
                   "guest agent: connection closed during guest-sync");
      buffer_.append(buf, static_cast<size_t>(n));
    }
    buffer_.erase(0, delim + 1);
    auto line = ReadLine(deadline);
    if (!line) {
      if (line.error().code() == ErrorCode::kTimeout) return timed_out();
      return tl::unexpected(line.error());
    }
    // A delimited reply to an older sync (another id) is skipped too.
    auto reply = ParseAgentReply(*line, id);
    if (reply && *reply && (*reply)->is_number_integer() &&
        (*reply)->get<int64_t>() == id) {
      synced_ = true;
      return Ok();
    }
  }
}

Result<Json> GuestAgentClient::Execute(const std::string& command,
                                       const Json& arguments,
                                       std::chrono::milliseconds timeout) {
  if (!arguments.is_object()) {
    return Err(ErrorCode::kInvalidArgument,
               "guest agent: arguments of " + command + " must be an object");
  }
  if (!synced_) TRY(Sync(std::min(timeout, kSyncTimeout)));
  auto deadline = Clock::now() + timeout;
  int64_t id = next_id_++;
  Json request = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  std::string line =
      request.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  auto fail = [&](Error e) {
    // A late answer must not be read as the next command's.
    synced_ = false;
    if (e.code() == ErrorCode::kTimeout) {
      e = Error(ErrorCode::kTimeout,
                "guest agent: no reply to " + command + " within " +
                    std::to_string(timeout.count()) + " ms");
    }
    return tl::unexpected(e);
  };
  if (auto sent = Send(line, deadline); !sent) return fail(sent.error());
  while (true) {
    auto reply_line = ReadLine(deadline);
    if (!reply_line) return fail(reply_line.error());
    if (reply_line->find_first_not_of(" \r") == std::string::npos) continue;
    auto reply = ParseAgentReply(*reply_line, id);
    if (!reply) continue;  // a stale answer to someone else
    if (!*reply) {
      Error e = reply->error();
      e.WithContext(command);
      return tl::unexpected(e);
    }
    return std::move(**reply);
  }
}

}  // namespace vireo
