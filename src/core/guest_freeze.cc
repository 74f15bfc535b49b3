#include "core/guest_freeze.h"

#include "common/log.h"

namespace vireo {
namespace {

using std::chrono::milliseconds;

// How long the probe may take when an agent is there but slow (the absent
// case is bounded by the engine's sync timeout, ~1.5 s).
constexpr milliseconds kProbeTimeout{2000};

// The engine prefixes errors with the VM name; the note names the VM anyway.
std::string Reason(const Error& e, const std::string& vm) {
  std::string m = e.message();
  if (m.rfind(vm + ": ", 0) == 0) m.erase(0, vm.size() + 2);
  return m;
}

}  // namespace

std::unique_ptr<GuestFreeze> GuestFreeze::Begin(VmEngine* engine,
                                                const std::string& vm) {
  return Begin(engine, vm, Options{});
}

std::unique_ptr<GuestFreeze> GuestFreeze::Begin(VmEngine* engine,
                                                const std::string& vm,
                                                Options options) {
  std::unique_ptr<GuestFreeze> f(new GuestFreeze(engine, vm, options));
  f->Freeze();
  return f;
}

GuestFreeze::~GuestFreeze() { Thaw(); }

void GuestFreeze::Freeze() {
  auto start = std::chrono::steady_clock::now();
  // A paused guest cannot answer; its disks are at rest anyway, but nothing
  // flushed its caches.
  if (auto state = engine_->QueryStatus(vm_); state && *state != "running") {
    crash_reason_ = "the guest is " + *state + ", its agent cannot answer";
    return;
  }
  // The probe: an absent agent fails here, within the sync timeout.
  auto status = engine_->GuestAgent(vm_, "guest-fsfreeze-status",
                                    Json::object(), kProbeTimeout);
  if (!status) {
    crash_reason_ = "no guest agent: " + Reason(status.error(), vm_);
    LOG_INFO("{}: {} (probe took {} ms)", vm_, crash_reason_,
             std::chrono::duration_cast<milliseconds>(
                 std::chrono::steady_clock::now() - start)
                 .count());
    return;
  }
  if (status->is_string() && status->get<std::string>() == "frozen") {
    // Someone in or outside the guest froze it on purpose; thawing it
    // afterwards would undo their freeze.
    already_frozen_ = true;
    return;
  }
  // From here the guest may be frozen (also when the freeze times out: the
  // agent may still complete it), so the thaw is due in any case.
  freeze_sent_ = true;
  auto deadline = std::chrono::steady_clock::now() + options_.max_frozen;
  watchdog_ = std::thread([this, deadline] { Watchdog(deadline); });
  auto froze = engine_->GuestAgent(vm_, "guest-fsfreeze-freeze", Json::object(),
                                   options_.freeze_timeout);
  if (!froze) {
    crash_reason_ =
        "guest agent could not freeze: " + Reason(froze.error(), vm_);
    LOG_WARN("{}: {}", vm_, crash_reason_);
    return;
  }
  froze_ = true;
  filesystems_ = froze->is_number_integer() ? froze->get<int>() : 0;
  LOG_INFO("{}: guest agent froze {} filesystems in {} ms", vm_, filesystems_,
           std::chrono::duration_cast<milliseconds>(
               std::chrono::steady_clock::now() - start)
               .count());
}

void GuestFreeze::Watchdog(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  if (cv_.wait_until(lock, deadline, [this] { return thawed_; })) return;
  LOG_WARN("{}: guest filesystems frozen for over {} ms; thawing", vm_,
           options_.max_frozen.count());
  watchdog_thawed_ = true;
  ThawLocked();
}

void GuestFreeze::ThawLocked() {
  if (thawed_) return;
  thawed_ = true;
  cv_.notify_all();
  if (!freeze_sent_) return;
  // Twice: a thaw lost to a transient channel problem leaves the guest's
  // writers blocked, which is worse than a slow backup.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto r = engine_->GuestAgent(vm_, "guest-fsfreeze-thaw", Json::object(),
                                 options_.thaw_timeout);
    if (r) {
      thaw_error_.clear();
      return;
    }
    thaw_error_ = Reason(r.error(), vm_);
    LOG_ERROR("{}: guest-fsfreeze-thaw failed (attempt {}): {}", vm_,
              attempt + 1, thaw_error_);
  }
}

void GuestFreeze::Thaw() {
  {
    std::lock_guard lock(mu_);
    ThawLocked();
  }
  if (watchdog_.joinable()) watchdog_.join();
}

std::string GuestFreeze::describe() const {
  std::lock_guard lock(mu_);
  if (already_frozen_)
    return "filesystem-consistent (guest filesystems were already frozen)";
  std::string out;
  if (watchdog_thawed_) {
    out = "crash-consistent (the guest stayed frozen over " +
          std::to_string(options_.max_frozen.count()) +
          " ms and was thawed before the point in time was certain)";
  } else if (froze_ && filesystems_ > 0) {
    out = "filesystem-consistent (guest agent froze " +
          std::to_string(filesystems_) +
          (filesystems_ == 1 ? " filesystem)" : " filesystems)");
  } else if (froze_) {
    out = "crash-consistent (the guest agent found no filesystem to freeze)";
  } else {
    out = "crash-consistent (" + crash_reason_ + ")";
  }
  if (!thaw_error_.empty()) out += "; guest thaw failed: " + thaw_error_;
  return out;
}

}  // namespace vireo
