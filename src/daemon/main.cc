// vireod: the Vireo daemon. Thin wiring: flags in, Daemon out.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "api/static_files.h"
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
  // Snapshot scheduler poll period; hidden (empty group), for tests.
  app.add_option("--snapshot-scheduler-period-ms",
                 o.snapshot_scheduler_period_ms)
      ->group("")
      ->check(CLI::PositiveNumber);
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->capture_default_str();
  // Web UI and web authentication (docs/auth.md).
  bool init_admin = false;
  app.add_option("--web-root", o.web_root,
                 "Directory of the built web UI (default: ../web/dist next to "
                 "the vireod binary)");
  app.add_option("--max-upload-bytes", o.max_upload_bytes,
                 "Largest image accepted by POST /1.0/images/upload")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--init-admin", init_admin,
               "Set the password of web UI user 'admin' (created if absent) "
               "from $VIREO_ADMIN_PASSWORD or one line of stdin, and exit");
  // Consoles: how long a console secret stays valid (hidden; for tests).
  app.add_option("--console-ticket-ttl-ms", o.console_ticket_ttl_ms)
      ->check(CLI::PositiveNumber)
      ->group("");
  app.add_option("--backup-rate-limit", o.backup_rate_limit_mib,
                 "Disk read rate of all backups together, in MiB/s, so "
                 "backups leave I/O to the running VMs (0: unlimited)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  if (const char* tick = getenv("VIREO_BACKUP_TICK_MS"))
    o.backup_tick_ms = atoi(tick);
  app.add_option("--backup-tick-ms", o.backup_tick_ms,
                 "Scheduled-backup check interval (tests)")
      ->group("");
  CLI11_PARSE(app, argc, argv);
  if (init_admin) {
    vireo::InitLogging(log_level);
    std::string password;
    if (const char* env = std::getenv("VIREO_ADMIN_PASSWORD"); env && *env) {
      password = env;
    } else if (!std::getline(std::cin, password)) {
      std::cerr << "vireod: --init-admin: no password on stdin and "
                   "VIREO_ADMIN_PASSWORD is not set\n";
      return 1;
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    auto st = vireo::InitAdmin(o, password);
    if (!st) {
      std::cerr << "vireod: --init-admin: " << st.error().ToString() << "\n";
      return 1;
    }
    std::cerr << "vireod: password of web UI user 'admin' set\n";
    return 0;
  }
  if (o.web_root.empty()) {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    o.web_root = vireo::StaticFiles::DefaultRoot(ec ? argv[0] : exe.string());
  }

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
