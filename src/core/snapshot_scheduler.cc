#include "core/snapshot_scheduler.h"

#include <ctime>

#include "common/log.h"
#include "core/instance_options.h"

namespace vireo {

namespace {
constexpr std::string_view kAutoPrefix = "auto-";
bool IsAuto(const std::string& name) { return name.rfind(kAutoPrefix, 0) == 0; }
}  // namespace

SnapshotScheduler::SnapshotScheduler(SnapshotService* snapshots,
                                     InstanceService* instances,
                                     std::chrono::milliseconds period)
    : snapshots_(snapshots), instances_(instances), period_(period) {}

SnapshotScheduler::~SnapshotScheduler() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SnapshotScheduler::Start() {
  thread_ = std::thread([this] { Loop(); });
}

std::string SnapshotScheduler::AutoName(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(kAutoPrefix) + buf;
}

void SnapshotScheduler::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, period_, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    RunOnce(static_cast<int64_t>(::time(nullptr)));
    lock.lock();
  }
}

void SnapshotScheduler::RunOnce(int64_t now) {
  auto list = instances_->List();
  if (!list) {
    LOG_WARN("snapshot scheduler: {}", list.error().ToString());
    return;
  }
  for (const Instance& inst : *list) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    if (!inst.config.options.count("snapshots.schedule") &&
        !inst.config.options.count("snapshots.expiry"))
      continue;
    Handle(inst, now);
  }
}

void SnapshotScheduler::Handle(const Instance& inst, int64_t now) {
  auto listing = snapshots_->List(inst.name());
  if (!listing) return;  // deleted meanwhile
  const auto& opts = inst.config.options;
  if (auto it = opts.find("snapshots.expiry"); it != opts.end()) {
    if (auto expiry = ParseDuration(it->second)) {
      for (const SnapshotRecord& r : listing->snapshots) {
        if (!IsAuto(r.name) || r.created_at + expiry->count() > now) continue;
        if (auto st = snapshots_->Delete(inst.name(), r.name); !st)
          LOG_WARN("{}: expiring {}: {}", inst.name(), r.name,
                   st.error().ToString());
        else
          LOG_INFO("{}: expired snapshot {}", inst.name(), r.name);
      }
    }
  }
  auto it = opts.find("snapshots.schedule");
  if (it == opts.end()) return;
  auto schedule = ParseSchedule(it->second);
  if (!schedule) return;
  int64_t last = 0;
  for (const SnapshotRecord& r : listing->snapshots)
    if (IsAuto(r.name)) last = std::max(last, r.created_at);
  if (last != 0 && now - last < schedule->interval.count()) return;
  // Mid-change VMs are caught on a later pass.
  InstanceState s = inst.status.state;
  if (s == InstanceState::kStarting || s == InstanceState::kStopping) return;
  std::string name = AutoName(now);
  auto made = snapshots_->Create(inst.name(), name, false);
  if (!made)
    LOG_WARN("{}: scheduled snapshot {}: {}", inst.name(), name,
             made.error().ToString());
}

}  // namespace vireo
