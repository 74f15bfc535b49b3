// Scheduled backups: each tick, every instance whose `backups.schedule`
// interval has passed since its last backup is backed up to `backups.store`,
// then pruned to `backups.keep-last` when set.

#include <ctime>

#include "common/log.h"
#include "core/backup_service.h"
#include "core/instance_options.h"

namespace vireo {

namespace {

std::string Option(const std::map<std::string, std::string>& o,
                   const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? "" : it->second;
}

}  // namespace

void BackupService::StartScheduler() {
  if (options_.tick.count() <= 0 || scheduler_.joinable()) return;
  scheduler_ = std::thread([this] { SchedulerLoop(); });
}

void BackupService::SchedulerLoop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.tick, [this] { return stopping_; }))
        return;
    }
    auto all = instances_->List();
    if (!all) continue;
    for (const Instance& inst : *all) {
      const auto& opts = inst.config.options;
      // Options are validated when set; an unparsable one means no schedule.
      auto schedule = ParseSchedule(Option(opts, "backups.schedule"));
      if (!schedule || schedule->interval.count() <= 0) continue;
      int64_t every = schedule->interval.count();
      std::string store = Option(opts, "backups.store");
      int64_t now = ::time(nullptr);
      int64_t last = 0;
      {
        std::lock_guard lock(mu_);
        auto it = last_scheduled_.find(inst.name());
        if (it != last_scheduled_.end()) last = it->second;
      }
      if (last == 0) {
        // First look since vireod started: the store knows the last one.
        if (auto repo = open_(store)) {
          if (auto list = (*repo)->List(inst.name()); list && !list->empty())
            last = list->back().created_at;
        }
      }
      if (now - last < every) {
        std::lock_guard lock(mu_);
        last_scheduled_[inst.name()] = last;
        continue;
      }
      {
        std::lock_guard lock(mu_);
        last_scheduled_[inst.name()] = now;
        if (stopping_) return;
      }
      LOG_INFO("scheduled backup of '{}' to store '{}'", inst.name(),
               store.empty() ? "(default)" : store);
      auto op = Start(inst.name(), store);
      if (!op) {
        LOG_WARN("scheduled backup of '{}': {}", inst.name(),
                 op.error().ToString());
        continue;
      }
      // Wait in slices so a shutting-down vireod is not held up.
      Result<Operation> fin = ops_->Get(op->id);
      while (fin && fin->status == OperationStatus::kRunning) {
        {
          std::lock_guard lock(mu_);
          if (stopping_) return;
        }
        fin = ops_->Wait(op->id, std::chrono::seconds(1));
      }
      if (!fin || fin->status != OperationStatus::kSuccess) continue;
      std::string keep = Option(opts, "backups.keep-last");
      if (!keep.empty() &&
          keep.find_first_not_of("0123456789") == std::string::npos &&
          keep.size() < 6) {
        backup::PrunePolicy policy;
        policy.instance = inst.name();
        policy.keep_last = std::max(1, std::stoi(keep));
        auto repo = open_(store);
        auto pruned =
            repo ? (*repo)->Prune(policy)
                 : Result<backup::PruneReport>(tl::unexpected(repo.error()));
        if (!pruned)
          LOG_WARN("prune after scheduled backup of '{}': {}", inst.name(),
                   pruned.error().ToString());
      }
    }
  }
}

}  // namespace vireo
