#include "engine/qemu/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace vireo {
namespace {

using Clock = std::chrono::steady_clock;

// A line longer than this is not QMP; refuse to buffer it forever.
constexpr size_t kMaxLineBytes = 16u << 20;

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

Error QmpError(const Json& error) {
  std::string cls = "GenericError";
  std::string desc = "unknown QMP error";
  if (error.is_object()) {
    auto c = error.find("class");
    if (c != error.end() && c->is_string()) cls = c->get<std::string>();
    auto d = error.find("desc");
    if (d != error.end() && d->is_string()) desc = d->get<std::string>();
  }
  ErrorCode code = ErrorCode::kFailedPrecondition;
  if (cls == "CommandNotFound") code = ErrorCode::kInvalidArgument;
  if (cls == "DeviceNotFound") code = ErrorCode::kNotFound;
  return Error(code, "qmp: " + desc);
}

// One sendmsg() carrying `fd` as SCM_RIGHTS ancillary data.
ssize_t SendWithFd(int sock, const char* data, size_t size, int fd) {
  iovec iov{const_cast<char*>(data), size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL);
}

}  // namespace

Result<std::unique_ptr<QmpClient>> QmpClient::Connect(
    const std::string& socket_path, std::chrono::milliseconds timeout,
    std::function<bool()> give_up) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) {
    return Err(ErrorCode::kInvalidArgument,
               "qmp: socket path too long: " + socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  auto deadline = Clock::now() + timeout;
  int last_errno = 0;
  while (true) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return ErrnoErr("qmp: socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) ==
        0) {
      return FromFd(std::move(fd), std::chrono::milliseconds(
                                       std::max(MillisLeft(deadline), 1000)));
    }
    last_errno = errno;
    if (last_errno != ENOENT && last_errno != ECONNREFUSED &&
        last_errno != EAGAIN && last_errno != EINTR) {
      return ErrnoErr("qmp: connect " + socket_path, last_errno);
    }
    if (give_up && give_up()) {
      return Err(ErrorCode::kUnavailable,
                 "qmp: QEMU exited before its monitor was ready");
    }
    if (Clock::now() >= deadline) {
      return Err(ErrorCode::kTimeout,
                 "qmp: connect " + socket_path + ": " +
                     std::strerror(last_errno) + " (gave up after " +
                     std::to_string(timeout.count()) + " ms)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<std::unique_ptr<QmpClient>> QmpClient::FromFd(
    UniqueFd fd, std::chrono::milliseconds timeout) {
  // Bound each send() so a wedged QEMU cannot block a caller forever.
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::unique_ptr<QmpClient> client(new QmpClient(std::move(fd)));
  TRY(client->Handshake(timeout));
  return client;
}

Status QmpClient::Handshake(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  // The greeting is read here, before the reader thread exists.
  size_t newline;
  while ((newline = buffer_.find('\n')) == std::string::npos) {
    pollfd p{fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, MillisLeft(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoErr("qmp: poll");
    if (r == 0) return Err(ErrorCode::kTimeout, "qmp: no greeting from QEMU");
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoErr("qmp: read greeting");
    if (n == 0)
      return Err(ErrorCode::kUnavailable,
                 "qmp: connection closed before greeting");
    buffer_.append(buf, static_cast<size_t>(n));
    if (buffer_.size() > kMaxLineBytes) {
      return Err(ErrorCode::kInvalidArgument, "qmp: greeting too long");
    }
  }
  auto greeting = ParseJson(std::string_view(buffer_).substr(0, newline));
  if (!greeting || !greeting->is_object() || !greeting->contains("QMP")) {
    return Err(ErrorCode::kInvalidArgument,
               "qmp: peer did not send a QMP greeting");
  }
  greeting_ = std::move(*greeting);
  buffer_.erase(0, newline + 1);
  reader_ = std::thread([this] { ReaderLoop(); });
  auto caps =
      Execute("qmp_capabilities", Json::object(),
              std::chrono::milliseconds(std::max(MillisLeft(deadline), 1000)));
  if (!caps) {
    Error e = caps.error();
    return tl::unexpected(e.WithContext("qmp_capabilities"));
  }
  return Ok();
}

QmpClient::~QmpClient() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ::shutdown(fd_.get(), SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
}

void QmpClient::SetEventHandler(EventHandler handler) {
  std::lock_guard lock(mu_);
  event_handler_ = std::move(handler);
}

void QmpClient::SetCloseHandler(CloseHandler handler) {
  std::unique_lock lock(mu_);
  close_handler_ = std::move(handler);
  if (closed_ && !stopping_ && close_handler_) {
    CloseHandler h = close_handler_;
    lock.unlock();
    h();
  }
}

bool QmpClient::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

bool QmpClient::WaitClosed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return reader_done_; });
}

Result<Json> QmpClient::Execute(const std::string& command,
                                const Json& arguments,
                                std::chrono::milliseconds timeout,
                                int pass_fd) {
  if (!arguments.is_object()) {
    return Err(ErrorCode::kInvalidArgument,
               "qmp: arguments of " + command + " must be an object");
  }
  int64_t id;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Err(ErrorCode::kUnavailable, "qmp: " + close_reason_);
    id = next_id_++;
    pending_[id];
  }
  Json request = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  // replace: invalid UTF-8 from a caller must not throw.
  std::string line =
      request.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  bool sent = true;
  int send_errno = 0;
  {
    std::lock_guard lock(write_mu_);
    size_t off = 0;
    while (off < line.size()) {
      ssize_t n;
      if (pass_fd >= 0 && off == 0) {
        // The fd rides on the first byte of the command, as QEMU expects.
        n = SendWithFd(fd_.get(), line.data(), line.size(), pass_fd);
      } else {
        n = ::send(fd_.get(), line.data() + off, line.size() - off,
                   MSG_NOSIGNAL);
      }
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        sent = false;
        send_errno = errno;
        break;
      }
      off += static_cast<size_t>(n);
    }
  }
  std::unique_lock lock(mu_);
  if (!sent) {
    pending_.erase(id);
    return Err(ErrorCode::kUnavailable,
               "qmp: send " + command + ": " + std::strerror(send_errno));
  }
  bool done = cv_.wait_for(lock, timeout,
                           [&] { return pending_[id].result.has_value(); });
  if (!done) {
    pending_.erase(id);
    return Err(ErrorCode::kTimeout, "qmp: no reply to " + command + " within " +
                                        std::to_string(timeout.count()) +
                                        " ms");
  }
  Result<Json> result = std::move(*pending_[id].result);
  pending_.erase(id);
  if (!result) result.error().WithContext(command);
  return result;
}

void QmpClient::ReaderLoop() {
  std::string error;
  bool ok = true;
  // Lines left over from the handshake come first.
  while (ok) {
    size_t newline;
    while (ok && (newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      ok = HandleLine(line, &error);
    }
    if (!ok) break;
    if (buffer_.size() > kMaxLineBytes) {
      error = "QMP message too long";
      break;
    }
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::string("read: ") + std::strerror(errno);
      break;
    }
    if (n == 0) {
      error = "connection closed by QEMU";
      break;
    }
    buffer_.append(buf, static_cast<size_t>(n));
  }
  if (!ok) {
    LOG_WARN("qmp: protocol error, dropping connection: {}", error);
    ::shutdown(fd_.get(), SHUT_RDWR);
  }
  MarkClosed(error);
}

bool QmpClient::HandleLine(std::string_view line, std::string* error) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
    line.remove_suffix(1);
  if (line.empty()) return true;
  auto parsed = ParseJson(line);
  if (!parsed || !parsed->is_object()) {
    *error = "bad JSON from QEMU: " + std::string(line.substr(0, 200));
    return false;
  }
  const Json& msg = *parsed;
  if (auto ev = msg.find("event"); ev != msg.end()) {
    if (!ev->is_string()) {
      *error = "QMP event name is not a string";
      return false;
    }
    Json data = Json::object();
    if (auto d = msg.find("data"); d != msg.end()) data = *d;
    EventHandler handler;
    {
      std::lock_guard lock(mu_);
      handler = event_handler_;
    }
    if (handler) handler(ev->get<std::string>(), data);
    return true;
  }
  auto id = msg.find("id");
  if (id == msg.end() || !id->is_number_integer()) return true;  // not ours
  if (auto r = msg.find("return"); r != msg.end()) {
    DeliverReply(id->get<int64_t>(), *r);
  } else if (auto e = msg.find("error"); e != msg.end()) {
    DeliverReply(id->get<int64_t>(), tl::unexpected(QmpError(*e)));
  } else {
    DeliverReply(
        id->get<int64_t>(),
        Err(ErrorCode::kInternal, "qmp: reply has neither return nor error"));
  }
  return true;
}

void QmpClient::DeliverReply(int64_t id, Result<Json> result) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // caller timed out already
  it->second.result = std::move(result);
  cv_.notify_all();
}

void QmpClient::MarkClosed(const std::string& reason) {
  CloseHandler handler;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    close_reason_ = reason;
    for (auto& [id, pending] : pending_) {
      if (!pending.result)
        pending.result = Err(ErrorCode::kUnavailable, "qmp: " + reason);
    }
    cv_.notify_all();
    if (!stopping_ && close_handler_) handler = close_handler_;
  }
  if (handler) handler();
  std::lock_guard lock(mu_);
  reader_done_ = true;
  cv_.notify_all();
}

}  // namespace vireo
