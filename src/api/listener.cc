#include "api/listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "common/log.h"

namespace vireo {

namespace {

constexpr int kBacklog = 128;

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return Err(ErrorCode::kInvalidArgument,
               "unix socket path is empty or too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// A socket file nobody answers on is left over from a crash.
Status RemoveStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return ErrnoErr("stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Err(ErrorCode::kAlreadyExists, path + " exists and is not a socket");
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return ErrnoErr("socket");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr),
                sizeof(addr)) == 0) {
    return Err(ErrorCode::kAlreadyExists,
               "another server is listening on " + path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoErr("remove stale " + path);
  return Ok();
}

Result<UniqueFd> MakeWakeFd() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) return ErrnoErr("eventfd");
  return fd;
}

}  // namespace

Listener::Listener(UniqueFd fd, UniqueFd wake_fd, std::string unix_path,
                   int port)
    : fd_(std::move(fd)),
      wake_fd_(std::move(wake_fd)),
      unix_path_(std::move(unix_path)),
      port_(port) {}

Listener::~Listener() {
  fd_.Reset();
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

Result<std::unique_ptr<Listener>> Listener::BindUnix(const std::string& path) {
  ASSIGN_OR_RETURN(sockaddr_un addr, UnixAddress(path));
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::exists(parent)) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      return Err(ErrorCode::kIo,
                 "create " + parent.string() + ": " + ec.message());
    ::chmod(parent.c_str(), 0755);
  }
  TRY(RemoveStaleSocket(path, addr));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoErr("socket");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr),
             sizeof(addr)) != 0) {
    return ErrnoErr("bind " + path);
  }
  if (::chmod(path.c_str(), 0660) != 0) {
    int saved = errno;
    ::unlink(path.c_str());
    return ErrnoErr("chmod " + path, saved);
  }
  if (::listen(fd.get(), kBacklog) != 0) {
    int saved = errno;
    ::unlink(path.c_str());
    return ErrnoErr("listen " + path, saved);
  }
  ASSIGN_OR_RETURN(UniqueFd wake, MakeWakeFd());
  return std::unique_ptr<Listener>(
      new Listener(std::move(fd), std::move(wake), path, 0));
}

Result<std::unique_ptr<Listener>> Listener::BindTcp(
    const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Err(ErrorCode::kInvalidArgument,
               "HTTPS address must be host:port, got '" + address + "'");
  }
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (port.empty())
    return Err(ErrorCode::kInvalidArgument,
               "missing port in '" + address + "'");

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(),
                         &hints, &found);
  if (rc != 0) {
    return Err(ErrorCode::kInvalidArgument,
               "resolve '" + address + "': " + std::string(::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(found, ::freeaddrinfo);
  Error last(ErrorCode::kIo, "no usable address for '" + address + "'");
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                         ai->ai_protocol));
    if (!fd) {
      last = Error(ErrorCode::kIo, "socket", errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 ||
        ::listen(fd.get(), kBacklog) != 0) {
      last = Error(ErrorCode::kIo, "bind " + address, errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) !=
        0) {
      return ErrnoErr("getsockname");
    }
    int bound_port =
        bound.ss_family == AF_INET6
            ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    ASSIGN_OR_RETURN(UniqueFd wake, MakeWakeFd());
    return std::unique_ptr<Listener>(new Listener(
        std::move(fd), std::move(wake), std::string(), bound_port));
  }
  return tl::unexpected<Error>(std::move(last));
}

void Listener::Run(const std::function<void(UniqueFd)>& on_accept) {
  while (true) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("listener poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
      LOG_ERROR("listening socket failed; no longer accepting connections");
      return;
    }
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      // Out of descriptors or memory: back off instead of spinning.
      LOG_WARN("accept failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    on_accept(std::move(conn));
  }
}

void Listener::Wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
}

}  // namespace vireo
