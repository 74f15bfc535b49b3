#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "core/instance_service.h"
#include "core/snapshot_service.h"

namespace vireo {

// Automatic snapshots: every `period`, for each instance with
// snapshots.schedule, takes a disk-only snapshot "auto-<UTC time>" when the
// newest auto-* is older than the schedule's interval, and deletes auto-*
// snapshots older than snapshots.expiry. Manual snapshots are never expired.
class SnapshotScheduler {
 public:
  SnapshotScheduler(SnapshotService* snapshots, InstanceService* instances,
                    std::chrono::milliseconds period);
  ~SnapshotScheduler();  // stops and joins the thread

  void Start();
  // One pass at time `now` (unix seconds); public for tests.
  void RunOnce(int64_t now);

  // "auto-20261205T171500Z" for a unix time.
  static std::string AutoName(int64_t unix_seconds);

 private:
  void Loop();
  void Handle(const Instance& inst, int64_t now);

  SnapshotService* snapshots_;
  InstanceService* instances_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vireo
