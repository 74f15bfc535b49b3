#include "common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>

namespace vireo {

std::string ExitStatus::Describe() const {
  if (signal != 0)
    return "killed by signal " + std::to_string(signal) + " (" +
           strsignal(signal) + ")";
  if (code >= 0) return "exited with code " + std::to_string(code);
  return "exited (status unknown)";
}

namespace {

int OpenForChild(const std::string& path, int flags) {
  if (path.empty()) return ::open("/dev/null", O_RDWR | O_CLOEXEC);
  return ::open(path.c_str(), flags | O_CLOEXEC, 0640);
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) s.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

}  // namespace

Result<std::unique_ptr<Process>> Process::Spawn(const SpawnOptions& options) {
  if (options.argv.empty())
    return Err(ErrorCode::kInvalidArgument, "empty command");
  UniqueFd out(
      OpenForChild(options.stdout_path, O_WRONLY | O_CREAT | O_APPEND));
  UniqueFd err(
      OpenForChild(options.stderr_path, O_WRONLY | O_CREAT | O_APPEND));
  UniqueFd in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!out || !err || !in)
    return ErrnoErr("open child stdio for " + options.argv[0]);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return ErrnoErr("pipe");
  UniqueFd report_r(report[0]), report_w(report[1]);

  std::vector<char*> argv;
  for (const auto& a : options.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoErr("fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    if (options.new_session) ::setsid();
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    ::dup2(in.get(), 0);
    ::dup2(out.get(), 1);
    ::dup2(err.get(), 2);
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int fd : options.keep_fds) ::fcntl(fd, F_SETFD, 0);
    ::execvp(argv[0], argv.data());
    int e = errno;
    (void)!::write(report_w.get(), &e, sizeof(e));
    ::_exit(127);
  }
  report_w.Reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report_r.get(), &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(child_errno)) {
    ::waitpid(pid, nullptr, 0);
    return ErrnoErr("exec " + options.argv[0], child_errno);
  }
  int pidfd = ::pidfd_open(pid, 0);
  if (pidfd < 0) {
    int e = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return ErrnoErr("pidfd_open", e);
  }
  return std::unique_ptr<Process>(new Process(pid, UniqueFd(pidfd), true));
}

Result<std::unique_ptr<Process>> Process::Adopt(pid_t pid) {
  int pidfd = ::pidfd_open(pid, 0);
  if (pidfd < 0) return ErrnoErr("pidfd_open " + std::to_string(pid));
  return std::unique_ptr<Process>(new Process(pid, UniqueFd(pidfd), false));
}

Process::~Process() {
  if (is_child_ && !reaped_) {
    int status;
    ::waitpid(pid_, &status, WNOHANG);
  }
}

std::optional<ExitStatus> Process::WaitFor(std::chrono::milliseconds timeout) {
  if (reaped_) return ExitStatus{};
  struct pollfd p = {pidfd_.get(), POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r <= 0) return std::nullopt;
  ExitStatus status;
  if (is_child_) {
    int ws = 0;
    if (::waitpid(pid_, &ws, 0) == pid_) status = FromWaitStatus(ws);
  }
  reaped_ = true;
  return status;
}

bool Process::Signal(int sig) {
  if (reaped_) return false;
  return ::pidfd_send_signal(pidfd_.get(), sig, nullptr, 0) == 0;
}

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::seconds timeout) {
  if (argv.empty()) return Err(ErrorCode::kInvalidArgument, "empty command");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoErr("pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoErr("pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoErr("fork");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  out_w.Reset();
  err_w.Reset();
  CommandOutput result;
  // Read both pipes with poll so a chatty stderr cannot deadlock us.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  struct pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  int open_count = 2;
  bool timed_out = false;
  while (open_count > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int r = ::poll(fds, 2, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      char buf[8192];
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  result.status = FromWaitStatus(ws);
  if (timed_out) return Err(ErrorCode::kTimeout, argv[0] + " timed out");
  if (result.status.code == 127 && result.out.empty() && result.err.empty())
    return Err(ErrorCode::kUnavailable, argv[0] + ": command not found");
  return result;
}

Result<std::string> RunCommandOk(const std::vector<std::string>& argv,
                                 std::chrono::seconds timeout) {
  ASSIGN_OR_RETURN(auto r, RunCommand(argv, timeout));
  if (!r.status.success()) {
    std::string msg = r.err.empty() ? r.out : r.err;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
      msg.pop_back();
    return Err(ErrorCode::kIo,
               argv[0] + " " + r.status.Describe() + ": " + msg);
  }
  return std::move(r.out);
}

}  // namespace vireo
