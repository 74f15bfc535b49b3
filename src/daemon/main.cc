// vireod: the Vireo daemon. Thin wiring: flags in, Daemon out.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/log.h"
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  vireo::DaemonOptions o;
  std::string log_level = "info";
  CLI::App app{"vireod: the Vireo virtual machine manager daemon"};
  app.add_option("--data-dir", o.data_dir, "State directory")
      ->capture_default_str();
  app.add_option("--socket", o.socket, "Unix socket of the REST API")
      ->capture_default_str();
  app.add_option("--https", o.https,
                 "HTTPS listen address host:port (empty disables)")
      ->capture_default_str();
  app.add_option("--accel", o.accel, "Force the accelerator (default: detect)")
      ->check(CLI::IsMember({"", "kvm", "tcg"}));
  app.add_option("--qemu-user", o.qemu_user,
                 "Run QEMU as this user ('none' keeps root; default vireo-qemu "
                 "if present)");
  app.add_flag("!--no-sandbox", o.sandbox, "Disable QEMU's seccomp sandbox");
  app.add_option("--cpu-overcommit", o.cpu_overcommit, "vCPU overcommit ratio")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--memory-overcommit", o.memory_overcommit,
                 "Memory overcommit ratio")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--stop-timeout", o.stop_timeout_s,
                 "Seconds of ACPI grace before a kill")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--default-network", o.default_network,
                 "auto: create the NAT network vireo0 and put new VMs on it; "
                 "none: new VMs get user-mode NICs")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "none"}));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->capture_default_str();
  if (const char* tick = getenv("VIREO_BACKUP_TICK_MS"))
    o.backup_tick_ms = atoi(tick);
  app.add_option("--backup-tick-ms", o.backup_tick_ms,
                 "Scheduled-backup check interval (tests)")
      ->group("");
  CLI11_PARSE(app, argc, argv);

  vireo::InitLogging(log_level);
  // Signals are taken synchronously by Daemon::Run; block them in every thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto daemon = vireo::Daemon::Create(o);
  if (!daemon) {
    std::cerr << "vireod: " << daemon.error().ToString() << "\n";
    return 1;
  }
  auto st = (*daemon)->Run();
  if (!st) {
    std::cerr << "vireod: " << st.error().ToString() << "\n";
    return 1;
  }
  return 0;
}
