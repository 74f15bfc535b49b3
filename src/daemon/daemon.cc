#include "daemon/daemon.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <filesystem>

#include "api/server.h"
#include "auth/session_service.h"
#include "auth/token_service.h"
#include "auth/user_service.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/random.h"
#include "core/backup_service.h"
#include "core/backup_store_service.h"
#include "core/console_tickets.h"
#include "core/events.h"
#include "core/image_service.h"
#include "core/instance_service.h"
#include "core/operations.h"
#include "core/resources.h"
#include "core/snapshot_scheduler.h"
#include "core/snapshot_service.h"
#include "core/storage_service.h"
#include "core/volume_service.h"
#include "engine/qemu/qemu_engine.h"
#include "network/network_service.h"
#include "storage/dir_pool.h"
#include "store/sqlite/sqlite_store.h"

namespace vireo {

namespace {
constexpr const char* kDefaultQemuUser = "vireo-qemu";

Status MakeDir(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec)
    return Err(ErrorCode::kIo,
               "create directory " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return Ok();
}

// Least privilege: QEMU drops to an unprivileged user when we are root and
// the user exists (scripts/setup creates it).
std::string PickQemuUser(const std::string& requested) {
  if (requested == "none" || ::geteuid() != 0) return "";
  std::string user = requested.empty() ? kDefaultQemuUser : requested;
  return ::getpwnam(user.c_str()) ? user : "";
}

// The web UI needs someone to log in as: on a first start, "admin" with a
// random password that is shown exactly once.
Status EnsureFirstAdmin(UserService& users) {
  ASSIGN_OR_RETURN(bool empty, users.Empty());
  if (!empty) return Ok();
  const std::string password = RandomHex(12);
  TRY_CTX(users.Create("admin", password, "admin").map([](auto&&) {}),
          "create the first admin user");
  const std::string banner =
      "created web UI user 'admin' with password: " + password +
      "  (shown only this once; change it with `vireo user passwd admin` or "
      "`vireod --init-admin`)";
  LOG_WARN("{}", banner);
  std::fprintf(stderr, "\n*** vireod: %s ***\n\n", banner.c_str());
  std::fflush(stderr);
  return Ok();
}
}  // namespace

Status InitAdmin(const DaemonOptions& o, const std::string& password) {
  TRY(UserService::ValidatePassword(password));
  TRY(MakeDir(o.data_dir, 0711));
  // No vireod.lock: SQLite serializes writers, so this also works while a
  // vireod runs on the same data dir.
  ASSIGN_OR_RETURN(auto store, SqliteStore::Open(o.data_dir + "/vireo.db"));
  UserService users(store.get());
  TRY(users.SetOrCreateAdmin("admin", password).map([](auto&&) {}));
  return Ok();
}

// Declaration order is construction order; destruction runs in reverse, and
// ~Daemon resets the ones whose threads call into others first.
struct Daemon::Parts {
  UniqueFd lock_fd;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<QemuEngine> engine;
  std::unique_ptr<DirPool> pool;
  EventBus events;
  // Before operations: console operations wait on their tickets.
  std::unique_ptr<ConsoleTickets> console_tickets;
  std::unique_ptr<ResourceTracker> resources;
  std::unique_ptr<OperationManager> operations;
  std::unique_ptr<ImageService> images;
  std::unique_ptr<NetworkService> networks;
  std::unique_ptr<StorageService> storage;
  std::unique_ptr<InstanceService> instances;
  std::unique_ptr<VolumeService> volumes;
  std::unique_ptr<TokenService> tokens;
  std::unique_ptr<UserService> users;
  std::unique_ptr<SessionService> sessions;
  // Snapshots (issue 5): the service, then the scheduler thread using it.
  std::unique_ptr<SnapshotService> snapshots;
  std::unique_ptr<SnapshotScheduler> snapshot_scheduler;
  // Backup stores (repositories); used by the API and backup jobs.
  std::unique_ptr<BackupStoreService> backup_stores;
  std::unique_ptr<BackupService> backups;  // backup/restore jobs, schedule
  std::unique_ptr<ApiServer> api;
};

Result<std::unique_ptr<Daemon>> Daemon::Create(const DaemonOptions& o) {
  auto parts = std::make_unique<Parts>();
  TRY(MakeDir(o.data_dir, 0711));
  std::string lock_path = o.data_dir + "/vireod.lock";
  parts->lock_fd.Reset(
      ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!parts->lock_fd) return ErrnoErr("open " + lock_path);
  if (::flock(parts->lock_fd.get(), LOCK_EX | LOCK_NB) != 0)
    return Err(ErrorCode::kFailedPrecondition,
               "another vireod is already using data dir " + o.data_dir);

  ASSIGN_OR_RETURN(parts->store, SqliteStore::Open(o.data_dir + "/vireo.db"));
  TRY(MakeDir(o.data_dir + "/run", 0711));
  QemuEngine::Options eo;
  eo.run_dir = o.data_dir + "/run";
  eo.accel_override = o.accel;
  eo.run_as_user = PickQemuUser(o.qemu_user);
  eo.sandbox = o.sandbox;
  ASSIGN_OR_RETURN(parts->engine, QemuEngine::Create(eo));
  LOG_INFO("accelerator: {} ({})", parts->engine->Accelerator(),
           parts->engine->AcceleratorReason());
  TRY(MakeDir(o.data_dir + "/storage/default", 0711));
  ASSIGN_OR_RETURN(parts->pool,
                   DirPool::Create("default", o.data_dir + "/storage/default"));
  parts->resources = std::make_unique<ResourceTracker>(
      ProbeHost(), OvercommitPolicy{o.cpu_overcommit, o.memory_overcommit});
  parts->console_tickets = std::make_unique<ConsoleTickets>(
      std::chrono::milliseconds(o.console_ticket_ttl_ms));
  parts->operations = std::make_unique<OperationManager>(&parts->events);
  parts->backup_stores = std::make_unique<BackupStoreService>(
      parts->store.get(), parts->operations.get());
  parts->storage =
      std::make_unique<StorageService>(parts->store.get(), parts->pool.get());
  parts->storage->Load();
  InstanceService::Options so;
  so.stop_timeout_s = o.stop_timeout_s;
  so.state_dir = o.data_dir + "/instances";
  ASSIGN_OR_RETURN(
      parts->images,
      ImageService::Create(parts->store.get(), parts->operations.get(),
                           &parts->events, o.data_dir + "/images"));
  so.images = parts->images.get();
  NetworkService::Options no;
  no.run_dir = o.data_dir + "/run/networks";
  no.default_network = o.default_network;
  ASSIGN_OR_RETURN(parts->networks,
                   NetworkService::Create(parts->store.get(), no));
  so.networks = parts->networks.get();
  so.find_pool = [storage = parts->storage.get()](
                     const std::string& pool,
                     uint64_t size) -> Result<VolumePool*> {
    TRY(storage->CheckQuota(pool, size));
    return storage->Find(pool);
  };
  parts->instances = std::make_unique<InstanceService>(
      parts->store.get(), parts->engine.get(), parts->pool.get(),
      &parts->events, parts->operations.get(), parts->resources.get(), so);
  parts->volumes = std::make_unique<VolumeService>(
      parts->store.get(), parts->storage.get(), parts->instances.get(),
      parts->engine.get(), parts->operations.get(),
      VolumeService::Options{eo.run_as_user});
  parts->tokens = std::make_unique<TokenService>(parts->store.get());
  parts->users = std::make_unique<UserService>(parts->store.get());
  parts->sessions =
      std::make_unique<SessionService>(parts->store.get(), parts->users.get());
  TRY(EnsureFirstAdmin(*parts->users));
  parts->sessions->Purge();
  parts->instances->Recover();
  parts->snapshots = std::make_unique<SnapshotService>(
      parts->store.get(), parts->instances.get(), parts->engine.get(),
      parts->operations.get(), &parts->events);
  parts->snapshot_scheduler = std::make_unique<SnapshotScheduler>(
      parts->snapshots.get(), parts->instances.get(),
      std::chrono::milliseconds(o.snapshot_scheduler_period_ms));
  parts->snapshot_scheduler->Start();
  {  // Backup jobs (issue 5).
    BackupService::Options bo;
    bo.work_dir = o.data_dir + "/run/backup";
    bo.qemu_user = eo.run_as_user;
    bo.tick = std::chrono::milliseconds(o.backup_tick_ms);
    bo.read_rate_limit = o.backup_rate_limit_mib << 20;
    BackupService::OpenStore open =
        [stores = parts->backup_stores.get()](const std::string& name) {
          return stores->Open(name);
        };
    parts->backups = std::make_unique<BackupService>(
        parts->store.get(), parts->engine.get(), parts->instances.get(),
        parts->operations.get(), open, bo);
    parts->backups->StartScheduler();
  }

  ApiServerOptions ao;
  ao.unix_socket = o.socket;
  ao.https_address = o.https;
  ao.tls_cert_path = o.data_dir + "/server.crt";
  ao.tls_key_path = o.data_dir + "/server.key";
  ao.web_root = o.web_root;
  LOG_INFO("web UI files from {}{}", o.web_root,
           std::filesystem::is_directory(o.web_root)
               ? ""
               : " (missing: UI paths answer 404)");
  ao.max_upload_bytes = o.max_upload_bytes;
  ApiServices services;
  services.instances = parts->instances.get();
  services.operations = parts->operations.get();
  services.events = &parts->events;
  services.tokens = parts->tokens.get();
  services.images = parts->images.get();
  services.networks = parts->networks.get();
  services.storage = parts->storage.get();
  services.volumes = parts->volumes.get();
  services.backups = parts->backups.get();
  services.accelerator = parts->engine->Accelerator();
  services.accelerator_reason = parts->engine->AcceleratorReason();
  services.users = parts->users.get();
  services.sessions = parts->sessions.get();
  services.snapshots = parts->snapshots.get();
  services.console_tickets = parts->console_tickets.get();
  services.backup_stores = parts->backup_stores.get();
  ASSIGN_OR_RETURN(parts->api, ApiServer::Create(ao, services));
  TRY(parts->api->Start());
  if (!o.https.empty())
    LOG_INFO("HTTPS API on port {}", parts->api->https_port());
  LOG_INFO("vireod ready on {}", o.socket);

  auto d = std::unique_ptr<Daemon>(new Daemon());
  d->parts_ = std::move(parts);
  return d;
}

Daemon::~Daemon() {
  if (!parts_) return;
  // Stop taking requests, let running operations finish, then stop reacting
  // to the engine. VMs keep running: the next vireod re-adopts them.
  if (parts_->api) parts_->api->Stop();
  parts_->snapshot_scheduler.reset();  // may be mid-snapshot: joins it
  // Console operations still waiting for a client end now, not at expiry.
  if (parts_->console_tickets) parts_->console_tickets->Shutdown();
  if (parts_->backups) parts_->backups->StopScheduler();
  parts_->operations.reset();
  parts_->backups.reset();
  parts_->volumes.reset();
  parts_->instances.reset();
  parts_->networks.reset();
  parts_->engine.reset();
}

Status Daemon::Run() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  LOG_INFO("signal {}: shutting down (VMs keep running)", sig);
  return Ok();
}

}  // namespace vireo
