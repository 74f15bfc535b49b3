#pragma once

// Backup and restore jobs: feed a VM's disks, read at one point in time
// through QEMU (or qemu-nbd when stopped), into a backup repository, and
// create instances back from a backup. The repository itself (chunks,
// encryption, prune) lives in src/backup and core/backup_store_service.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backup/repository.h"
#include "common/error.h"
#include "common/json.h"
#include "common/rate_limiter.h"
#include "core/instance_service.h"
#include "core/operations.h"
#include "core/vm_engine.h"
#include "store/store.h"

namespace vireo {

Json BackupInfoToJson(const backup::BackupInfo& info);

class BackupService {
 public:
  // Opens a backup store by name ("" = the default store).
  using OpenStore = std::function<Result<std::shared_ptr<backup::Repository>>(
      const std::string& store)>;

  struct Options {
    std::string work_dir;   // restore scratch files (data_dir/run/backup)
    std::string qemu_user;  // QEMU's user, owner of fleecing images
    int connections = 4;    // parallel NBD connections per disk
    // Disk bytes read per second by all backups together; 0: unlimited.
    uint64_t read_rate_limit = 0;
    // Scheduler tick; 0 disables scheduled backups.
    std::chrono::milliseconds tick{60000};
  };

  BackupService(Store* store, VmEngine* engine, InstanceService* instances,
                OperationManager* ops, OpenStore open, Options options);
  ~BackupService();  // stops the scheduler

  // Checks synchronously (instance, store, disk files), then backs up in an
  // operation whose result is the BackupInfo JSON.
  [[nodiscard]] Result<Operation> Start(const std::string& instance,
                                        const std::string& store);
  // Creates instance `new_name` (default: the backed-up instance's name)
  // from backup `id`. kAlreadyExists if the name is taken (nothing touched).
  [[nodiscard]] Result<Operation> Restore(const std::string& store,
                                          const std::string& id,
                                          const std::string& new_name);
  // The backup itself, on the calling thread (operations and the scheduler).
  [[nodiscard]] Result<backup::BackupInfo> Backup(const std::string& instance,
                                                  const std::string& store);
  // Starts the schedule thread (backups.schedule of each instance).
  void StartScheduler();
  // Stops it (waits for the thread; a running backup operation continues).
  void StopScheduler();

 private:
  Status CheckDisks(const Instance& inst);
  Result<Json> DoRestore(std::shared_ptr<backup::Repository> repo,
                         const backup::BackupInfo& info,
                         const std::string& name);
  void SchedulerLoop();

  Store* store_;
  VmEngine* engine_;
  InstanceService* instances_;
  OperationManager* ops_;
  OpenStore open_;
  Options options_;
  RateLimiter read_limiter_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread scheduler_;
  std::map<std::string, int64_t> last_scheduled_;  // instance → unix secs
};

}  // namespace vireo
