#pragma once

#include <memory>
#include <string>

#include "auth/session_service.h"
#include "auth/token_service.h"
#include "auth/user_service.h"
#include "common/error.h"
#include "core/backup_service.h"
#include "core/backup_store_service.h"
#include "core/console_tickets.h"
#include "core/events.h"
#include "core/image_service.h"
#include "core/instance_service.h"
#include "core/operations.h"
#include "core/snapshot_service.h"
#include "core/storage_service.h"
#include "core/volume_service.h"
#include "network/network_service.h"

namespace vireo {

struct ApiServerOptions {
  std::string unix_socket;  // e.g. /run/vireo/vireo.sock; local root is admin
  std::string
      https_address;  // "host:port"; empty disables HTTPS; port 0 picks one
  std::string tls_cert_path;  // generated self-signed on first start if absent
  std::string tls_key_path;
  size_t max_body_bytes = 1 << 20;  // larger requests get 413
  std::string version = "0.1.0";
  // Web UI (docs/auth.md): static files for HTTPS paths outside /1.0 ("" or
  // a missing directory: 404), and the body limit of POST
  // /1.0/images/upload (streamed to disk; larger bodies get 413).
  std::string web_root;
  uint64_t max_upload_bytes = uint64_t{64} << 30;
};

// What the handlers call. The API holds no business logic of its own.
struct ApiServices {
  InstanceService* instances = nullptr;
  OperationManager* operations = nullptr;
  EventBus* events = nullptr;
  TokenService* tokens = nullptr;
  ImageService* images = nullptr;
  NetworkService* networks = nullptr;  // null: no managed networks
  StorageService* storage = nullptr;   // null: storage routes answer 503
  VolumeService* volumes = nullptr;
  std::string accelerator;  // for GET /1.0 and /1.0/resources
  std::string accelerator_reason;
  UserService* users = nullptr;                 // null: /1.0/users answers 503
  SessionService* sessions = nullptr;           // null: no cookie logins
  SnapshotService* snapshots = nullptr;         // snapshots, copies (issue 5)
  ConsoleTickets* console_tickets = nullptr;    // null: no console WebSockets
  BackupStoreService* backup_stores = nullptr;  // null: backup-store routes 503
  BackupService* backups = nullptr;  // backup/restore jobs; null: 503
};

class ApiServer {
 public:
  static Result<std::unique_ptr<ApiServer>> Create(ApiServerOptions options,
                                                   ApiServices services);
  virtual ~ApiServer() = default;
  // Binds the listeners and serves on background threads.
  [[nodiscard]] virtual Status Start() = 0;
  // Stops accepting, closes connections, joins threads.
  virtual void Stop() = 0;
  // The bound HTTPS port (useful when the address asked for port 0).
  virtual int https_port() const = 0;
};

}  // namespace vireo
