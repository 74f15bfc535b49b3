#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/json.h"

namespace vireo::e2e {

// The guest kit built by scripts/guest-kit (kernel + busybox initramfs).
struct GuestKit {
  std::string kernel;
  std::string initrd;
  std::string data_disk;
  // The compressed bzImage: booted through the real-mode entry, the kernel
  // sets up the VGA text console (vmlinux's PVH entry leaves it blank).
  std::string vga_kernel;
  static const GuestKit& Get();  // fails the test binary if the kit is missing
};

// A real vireod on a temporary data dir and socket. Kills every QEMU it
// started when destroyed.
class Daemon {
 public:
  // netns: run vireod inside this network namespace (`ip netns exec`).
  explicit Daemon(std::vector<std::string> extra_args = {},
                  std::string netns = "");
  ~Daemon();

  void Start();
  // Stops vireod only (SIGTERM, or SIGKILL when hard); VMs keep running.
  void Stop(bool hard = false);
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  const std::string& socket() const { return socket_; }
  int https_port() const { return https_port_; }

  std::unique_ptr<ApiClient> Client() const;
  // Runs the vireo CLI against this daemon; returns exit code, captures output.
  int Cli(const std::vector<std::string>& args, std::string* out = nullptr,
          std::string* err = nullptr) const;

 private:
  std::vector<std::string> extra_args_;
  std::string netns_;
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
  int https_port_ = 0;
};

// JSON body for a guest-kit VM.
Json GuestSpec(const std::string& name, const std::string& extra_cmdline = "");
// A guest-kit VM that prints to the VGA screen and the serial port, with a
// shell on each (console=tty0 console=ttyS0: markers still reach the log).
Json VgaGuestSpec(const std::string& name,
                  const std::string& extra_cmdline = "");

std::string ConsoleLog(ApiClient& c, const std::string& name);
// Polls the console log until `marker` has appeared `count` times.
bool WaitForLog(ApiClient& c, const std::string& name,
                const std::string& marker, std::chrono::seconds timeout,
                int count = 1);
// Polls the instance until its state is `state`.
bool WaitForState(ApiClient& c, const std::string& name,
                  const std::string& state, std::chrono::seconds timeout);
Json GetInstance(ApiClient& c, const std::string& name);
// Makes directory `path` and registers it as backup store `name`.
::testing::AssertionResult CreateBackupStore(const Daemon& d,
                                             const std::string& name,
                                             const std::string& path);
// Runs `cmd` with sh -c; a failure fails the test. Returns stdout.
std::string ShellOut(const std::string& cmd);
// Runs `vireo --json ARGS...`; a non-zero exit or a non-object reply fails
// the test (and gives {}).
Json CliJson(const Daemon& d, const std::vector<std::string>& args);
int CountOccurrences(const std::string& text, const std::string& needle);
bool ProcessAlive(pid_t pid);
// The real uid of a process, or -1.
int ProcessUid(pid_t pid);
// True if any socket the process holds is a listening TCP socket.
bool ListensOnTcp(pid_t pid);
std::string ProcessCmdline(pid_t pid);

// Runs a shell command line in the guest-kit's serial shell (through the
// console WebSocket) and returns what it printed between two markers, or
// nullopt on timeout. The guest must be up (VIREO-GUEST-UP seen).
std::optional<std::string> GuestRun(
    ApiClient& c, const std::string& name, const std::string& command,
    std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace vireo::e2e
