#pragma once

#include <termios.h>

#include <memory>

#include "common/error.h"

namespace vireo {

// Puts a terminal in raw mode (no echo, no line editing, no signals from
// Ctrl-C) for an interactive console, and restores it on destruction.
class RawTerminal {
 public:
  // kFailedPrecondition when fd is not a terminal.
  static Result<std::unique_ptr<RawTerminal>> Enter(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  RawTerminal(int fd, const termios& saved) : fd_(fd), saved_(saved) {}
  int fd_;
  termios saved_;
};

// Restores a descriptor's file status flags (O_NONBLOCK) on destruction:
// async I/O on stdin flips the flag on a description shared with the shell.
class FdFlagsGuard {
 public:
  explicit FdFlagsGuard(int fd);
  ~FdFlagsGuard();
  FdFlagsGuard(const FdFlagsGuard&) = delete;
  FdFlagsGuard& operator=(const FdFlagsGuard&) = delete;

 private:
  int fd_;
  int flags_;
};

}  // namespace vireo
