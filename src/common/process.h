#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace vireo {

struct SpawnOptions {
  std::vector<std::string> argv;
  // Files that receive stdout/stderr (appended); empty means /dev/null.
  std::string stdout_path;
  std::string stderr_path;
  // Start a new session so the child outlives its parent's process group
  // (VMs must survive a vireod restart).
  bool new_session = false;
  // Descriptors the child inherits under the same numbers (e.g. QEMU's taps);
  // every other descriptor above 2 is closed at exec.
  std::vector<int> keep_fds;
};

// Outcome of a finished process, in words a user can read.
struct ExitStatus {
  int code = -1;   // exit code, or -1 if signalled
  int signal = 0;  // terminating signal, or 0
  std::string Describe() const;
  bool success() const { return code == 0; }
};

// A child process. Owns a pidfd so exits can be polled without races; the
// destructor does NOT kill the process (VMs outlive their handles) but
// reaps it if it already exited.
class Process {
 public:
  static Result<std::unique_ptr<Process>> Spawn(const SpawnOptions& options);
  // Wraps an existing process (not our child) for exit notification.
  static Result<std::unique_ptr<Process>> Adopt(pid_t pid);
  ~Process();

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  bool is_child() const { return is_child_; }
  // Waits up to timeout for exit. Returns the status if it exited (status
  // is only known for children; for adopted processes code stays -1).
  std::optional<ExitStatus> WaitFor(std::chrono::milliseconds timeout);
  bool Signal(int sig);

 private:
  Process(pid_t pid, UniqueFd pidfd, bool is_child)
      : pid_(pid), pidfd_(std::move(pidfd)), is_child_(is_child) {}
  pid_t pid_;
  UniqueFd pidfd_;
  bool is_child_;
  bool reaped_ = false;
};

struct CommandOutput {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs a command to completion (e.g. qemu-img), capturing its output.
Result<CommandOutput> RunCommand(
    const std::vector<std::string>& argv,
    std::chrono::seconds timeout = std::chrono::seconds(120));
// Like RunCommand, but a non-zero exit is an error carrying stderr.
Result<std::string> RunCommandOk(
    const std::vector<std::string>& argv,
    std::chrono::seconds timeout = std::chrono::seconds(120));

}  // namespace vireo
