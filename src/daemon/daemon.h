#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/error.h"

namespace vireo {

struct DaemonOptions {
  std::string data_dir = "/var/lib/vireo";
  std::string socket = "/run/vireo/vireo.sock";
  std::string https = "0.0.0.0:8443";  // empty disables the HTTPS listener
  std::string accel;                   // "", "kvm" or "tcg"
  std::string qemu_user;               // run QEMU as this user ("" = auto)
  bool sandbox = true;
  double cpu_overcommit = 4.0;
  double memory_overcommit = 1.0;
  int stop_timeout_s = 30;
  std::string default_network = "auto";  // "auto" (vireo0) or "none"
  // Web UI and web authentication (docs/auth.md).
  std::string web_root;  // "" = next to the binary (StaticFiles::DefaultRoot)
  uint64_t max_upload_bytes = uint64_t{64} << 30;
  // How often the snapshot scheduler looks at snapshots.schedule/expiry.
  int snapshot_scheduler_period_ms = 60000;
  int64_t console_ticket_ttl_ms = 30000;  // validity of a console secret
  // Scheduled-backup tick (hidden flag --backup-tick-ms, env
  // VIREO_BACKUP_TICK_MS); 0 disables scheduled backups.
  int backup_tick_ms = 60000;
  // Backups' combined disk read rate, MiB/s; 0: unlimited.
  uint64_t backup_rate_limit_mib = 0;
};

// `vireod --init-admin`: sets the password of user "admin" (creating it as
// an admin when absent) in the data dir's database, without starting.
[[nodiscard]] Status InitAdmin(const DaemonOptions& options,
                               const std::string& password);

// Wires the store, engine, storage, services and API together, and tears
// them down in the one order that is safe.
class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> Create(const DaemonOptions& options);
  ~Daemon();
  // Serves until SIGINT or SIGTERM.
  [[nodiscard]] Status Run();

 private:
  Daemon() = default;
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace vireo
