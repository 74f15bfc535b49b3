#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/error.h"
#include "common/fd.h"

namespace vireo {

// A listening socket with a blocking accept loop that another thread can
// interrupt. Plain sockets rather than Asio acceptors: the loop only hands
// descriptors to connection threads, and stopping it must be reliable.
class Listener {
 public:
  // Creates the parent directory (0755) if needed, removes a stale socket
  // file (refuses if a server still answers on it), binds, chmods 0660.
  static Result<std::unique_ptr<Listener>> BindUnix(const std::string& path);
  // "host:port", "[v6]:port" or ":port" (all addresses); port 0 picks one.
  static Result<std::unique_ptr<Listener>> BindTcp(const std::string& address);
  ~Listener();

  // Accepts until Wake(); each connection goes to on_accept.
  void Run(const std::function<void(UniqueFd)>& on_accept);
  // Makes Run() return soon; callable from any thread.
  void Wake();
  int port() const { return port_; }

 private:
  Listener(UniqueFd fd, UniqueFd wake_fd, std::string unix_path, int port);
  UniqueFd fd_;
  UniqueFd wake_fd_;  // eventfd
  std::string unix_path_;
  int port_ = 0;
};

}  // namespace vireo
