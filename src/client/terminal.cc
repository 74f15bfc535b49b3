#include "client/terminal.h"

#include <fcntl.h>
#include <unistd.h>

namespace vireo {

Result<std::unique_ptr<RawTerminal>> RawTerminal::Enter(int fd) {
  if (!::isatty(fd))
    return Err(ErrorCode::kFailedPrecondition, "not a terminal");
  termios saved{};
  if (::tcgetattr(fd, &saved) != 0) return ErrnoErr("tcgetattr");
  termios raw = saved;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSANOW, &raw) != 0) return ErrnoErr("tcsetattr");
  return std::unique_ptr<RawTerminal>(new RawTerminal(fd, saved));
}

RawTerminal::~RawTerminal() { ::tcsetattr(fd_, TCSANOW, &saved_); }

FdFlagsGuard::FdFlagsGuard(int fd) : fd_(fd), flags_(::fcntl(fd, F_GETFL)) {}

FdFlagsGuard::~FdFlagsGuard() {
  if (flags_ >= 0) ::fcntl(fd_, F_SETFL, flags_);
}

}  // namespace vireo
