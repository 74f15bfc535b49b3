// Scheduled backups: each tick, every instance whose `backups.schedule`
// interval has passed since its last backup is backed up to `backups.store`,
// then pruned to `backups.keep-last` when set.

#include <ctime>

#include "common/log.h"
#include "core/backup_service.h"

namespace vireo {

namespace {

// The instance options map, once instance options exist in the config
// (core/instance_options, branch `snapshots`); empty before that.
template <typename Config>
std::map<std::string, std::string> OptionsOf(const Config& c) {
  if constexpr (requires { c.options; }) {
    return {c.options.begin(), c.options.end()};
  } else {
    return {};
  }
}

std::string Option(const std::map<std::string, std::string>& o,
                   const std::string& key) {
  auto it = o.find(key);
  return it == o.end() ? "" : it->second;
}

}  // namespace

// "@hourly", "@daily", "@weekly", "every <N>[smhd]" → seconds; 0 if invalid.
int64_t ParseBackupSchedule(const std::string& s) {
  if (s == "@hourly") return 3600;
  if (s == "@daily") return 86400;
  if (s == "@weekly") return 7 * 86400;
  if (s.rfind("every ", 0) != 0) return 0;
  std::string v = s.substr(6);
  while (!v.empty() && v.front() == ' ') v.erase(v.begin());
  if (v.empty()) return 0;
  int64_t unit = 1;
  switch (v.back()) {
    case 's': unit = 1; v.pop_back(); break;
    case 'm': unit = 60; v.pop_back(); break;
    case 'h': unit = 3600; v.pop_back(); break;
    case 'd': unit = 86400; v.pop_back(); break;
    default: break;
  }
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos ||
      v.size() > 9)
    return 0;
  return std::stoll(v) * unit;
}

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
      auto opts = OptionsOf(inst.config);
      int64_t every = ParseBackupSchedule(Option(opts, "backups.schedule"));
      if (every <= 0) continue;
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
        auto pruned = repo ? (*repo)->Prune(policy)
                           : Result<backup::PruneReport>(
                                 tl::unexpected(repo.error()));
        if (!pruned)
          LOG_WARN("prune after scheduled backup of '{}': {}", inst.name(),
                   pruned.error().ToString());
      }
    }
  }
}

}  // namespace vireo
