#pragma once

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "api/router.h"
#include "api/server.h"

namespace vireo {

// QEMU's serial chardev serves one client at a time; a second console would
// hang silently, so the API refuses it instead.
class ConsoleClaims {
 public:
  bool TryClaim(const std::string& instance);
  void Release(const std::string& instance);

 private:
  std::mutex mu_;
  std::set<std::string> active_;
};

// What every handler may use. Owned by the server, outlives all requests.
// The last rendered GET /1.0/instances body and the names it was rendered
// from: the list is the hottest read, and the names rarely change.
struct InstanceListCache {
  std::mutex mu;
  std::vector<std::string> names;
  std::string body;
  bool valid = false;
};

struct HandlerContext {
  ApiServices services;
  std::string version;
  std::atomic<bool> stopping{false};
  ConsoleClaims consoles;
  InstanceListCache list_cache;
};

using ContextHandler = ApiResponse (*)(HandlerContext*, ApiRequest&);
inline Handler Bind(HandlerContext* ctx, ContextHandler fn) {
  return [ctx, fn](ApiRequest& request) { return fn(ctx, request); };
}

// GET /1.0, GET /1.0/resources, GET /1.0/events.
void RegisterSystemRoutes(Router& router, HandlerContext* ctx);
// /1.0/instances and below, including the console.
void RegisterInstanceRoutes(Router& router, HandlerContext* ctx);
// POST /1.0/instances/{name}/eject (install media).
void RegisterMediaRoutes(Router& router, HandlerContext* ctx);
// /1.0/operations and below.
void RegisterOperationRoutes(Router& router, HandlerContext* ctx);
// /1.0/tokens and below.
void RegisterTokenRoutes(Router& router, HandlerContext* ctx);
// /1.0/images and below.
void RegisterImageRoutes(Router& router, HandlerContext* ctx);
// /1.0/networks and below.
void RegisterNetworkRoutes(Router& router, HandlerContext* ctx);
// An instance's NICs with their managed-network addresses.
Json NicsJson(HandlerContext* ctx, const Instance& instance);
// /1.0/storage-pools, their volumes, and /1.0/volumes.
void RegisterStorageRoutes(Router& router, HandlerContext* ctx);
// /1.0/backup-stores, their backups, verify/prune/gc/export/import.
void RegisterBackupStoreRoutes(Router& router, HandlerContext* ctx);
// POST /1.0/instances/{name}/backups and backup restore (backup jobs).
void RegisterBackupJobRoutes(Router& router, HandlerContext* ctx);

}  // namespace vireo
