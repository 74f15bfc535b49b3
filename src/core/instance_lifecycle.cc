#include "core/instance_lifecycle.h"

#include <chrono>
#include <ctime>

#include "common/log.h"

namespace vireo {

namespace {
constexpr int kRapidFailureWindowS = 10;
constexpr int kMaxRapidFailures = 5;

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

Json StateJson(const Instance& inst) { return ToJson(inst.status); }

std::string StateName(const Instance& inst) {
  return std::string(ToString(inst.status.state));
}
}  // namespace

InstanceLifecycle::InstanceLifecycle(Store* store, VmEngine* engine,
                                     EventBus* events,
                                     ResourceTracker* resources,
                                     int stop_timeout_s)
    : store_(store),
      engine_(engine),
      events_(events),
      resources_(resources),
      stop_timeout_s_(stop_timeout_s),
      reactor_([this] { ReactorLoop(); }) {}

InstanceLifecycle::~InstanceLifecycle() {
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  reactor_.join();
}

std::unique_lock<std::mutex> InstanceLifecycle::Lock(const std::string& name) {
  std::shared_ptr<std::mutex> mu;
  {
    std::lock_guard lock(locks_mu_);
    auto& slot = locks_[name];
    if (!slot) slot = std::make_shared<std::mutex>();
    mu = slot;
  }
  // The map keeps the mutex alive; entries are few (one per name ever seen).
  return std::unique_lock<std::mutex>(*mu);
}

Status InstanceLifecycle::CheckTransition(const Instance& inst,
                                          StateAction action) {
  InstanceState s = inst.status.state;
  auto refuse = [&](const std::string& why) {
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + inst.name() + "' " + why);
  };
  switch (action) {
    case StateAction::kStart:
      if (s == InstanceState::kStopped || s == InstanceState::kError)
        return Ok();
      return refuse("is already " + StateName(inst));
    case StateAction::kStop:
    case StateAction::kRestart:
      if (s == InstanceState::kRunning || s == InstanceState::kPaused ||
          s == InstanceState::kStopping || s == InstanceState::kStarting)
        return Ok();
      if (action == StateAction::kRestart && s == InstanceState::kError)
        return Ok();
      return refuse("is not running (it is " + StateName(inst) + ")");
    case StateAction::kPause:
      if (s == InstanceState::kRunning) return Ok();
      return refuse("cannot be paused: it is " + StateName(inst));
    case StateAction::kResume:
      if (s == InstanceState::kPaused) return Ok();
      return refuse("cannot be resumed: it is " + StateName(inst));
  }
  return Ok();
}

Result<Json> InstanceLifecycle::Apply(const std::string& name,
                                      StateAction action, bool force,
                                      int timeout_s) {
  auto guard = Lock(name);
  ASSIGN_OR_RETURN(Instance inst, store_->GetInstance(name));
  TRY(CheckTransition(inst, action));
  switch (action) {
    case StateAction::kStart:
      rapid_failures_.erase(name);
      return StartLocked(std::move(inst));
    case StateAction::kStop:
      return StopLocked(std::move(inst), force, timeout_s);
    case StateAction::kRestart: {
      if (inst.status.state != InstanceState::kError) {
        ASSIGN_OR_RETURN(Json stopped,
                         StopLocked(std::move(inst), force, timeout_s));
        (void)stopped;
      }
      ASSIGN_OR_RETURN(inst, store_->GetInstance(name));
      ASSIGN_OR_RETURN(Json started, StartLocked(std::move(inst)));
      events_->Lifecycle("instance-restarted", name);
      return started;
    }
    case StateAction::kPause:
      TRY(engine_->Pause(name));
      inst.status.state = InstanceState::kPaused;
      TRY(Save(inst));
      events_->Lifecycle("instance-paused", name);
      return StateJson(inst);
    case StateAction::kResume:
      TRY(engine_->Resume(name));
      inst.status.state = InstanceState::kRunning;
      TRY(Save(inst));
      events_->Lifecycle("instance-resumed", name);
      return StateJson(inst);
  }
  return Err(ErrorCode::kInternal, "unknown action");
}

Result<Json> InstanceLifecycle::StartLocked(Instance inst) {
  ASSIGN_OR_RETURN(auto all, store_->ListInstances());
  TRY(resources_->CheckCanStart(inst.config, all));
  // QEMU gets its own copy of each tap fd; ours close when this returns.
  std::vector<UniqueFd> taps;
  if (networks_) {
    auto prepared = networks_->PrepareTaps(inst);
    TRY_CTX(prepared, "start '" + inst.name() + "'");
    taps = std::move(*prepared);
  }
  std::vector<int> tap_fds;
  for (const auto& t : taps) tap_fds.push_back(t.get());
  inst.status.state = InstanceState::kStarting;
  inst.status.stop_requested = false;
  TRY(Save(inst));
  auto pid = engine_->Start(inst, tap_fds);
  if (!pid) {
    inst.status.state = InstanceState::kStopped;
    inst.status.pid = 0;
    inst.status.last_error = pid.error().ToString();
    (void)Save(inst);
    Error e = pid.error();
    e.WithContext("start '" + inst.name() + "'");
    return tl::unexpected(e);
  }
  inst.status.state = InstanceState::kRunning;
  inst.status.pid = *pid;
  inst.status.started_at = Now();
  inst.status.last_error.clear();
  TRY(Save(inst));
  events_->Lifecycle("instance-started", inst.name(), {{"pid", *pid}});
  return StateJson(inst);
}

Result<Json> InstanceLifecycle::StopLocked(Instance inst, bool force,
                                           int timeout_s) {
  const std::string name = inst.name();
  inst.status.stop_requested = true;
  inst.status.state = InstanceState::kStopping;
  TRY(Save(inst));
  if (timeout_s <= 0) timeout_s = stop_timeout_s_;
  bool exited = false;
  if (!force && engine_->IsRunning(name)) {
    // A paused guest cannot see the power button; let it run to handle it.
    auto status = engine_->QueryStatus(name);
    if (status && *status == "paused") (void)engine_->Resume(name);
    if (engine_->Powerdown(name))
      exited = engine_->WaitExit(name, timeout_s * 1000);
    if (!exited)
      LOG_WARN("{}: no ACPI shutdown after {}s, killing", name, timeout_s);
  }
  if (!exited) TRY(engine_->Kill(name));
  ASSIGN_OR_RETURN(inst, store_->GetInstance(name));
  inst.status.state = InstanceState::kStopped;
  inst.status.pid = 0;
  inst.status.started_at = 0;
  TRY(Save(inst));
  events_->Lifecycle("instance-stopped", name, {{"forced", force || !exited}});
  return StateJson(inst);
}

void InstanceLifecycle::OnEngineEvent(const VmEvent& event,
                                      OperationManager* ops) {
  {
    std::lock_guard lock(queue_mu_);
    queue_.emplace_back(event, ops);
  }
  queue_cv_.notify_one();
}

void InstanceLifecycle::ReactorLoop() {
  for (;;) {
    std::pair<VmEvent, OperationManager*> item;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    HandleEvent(item.first, item.second);
  }
}

void InstanceLifecycle::HandleEvent(const VmEvent& event,
                                    OperationManager* ops) {
  auto guard = Lock(event.instance);
  auto got = store_->GetInstance(event.instance);
  if (!got) return;  // deleted meanwhile
  Instance inst = std::move(*got);
  switch (event.kind) {
    case VmEvent::Kind::kPaused:
      if (inst.status.state == InstanceState::kRunning) {
        inst.status.state = InstanceState::kPaused;
        (void)Save(inst);
        events_->Lifecycle("instance-paused", inst.name());
      }
      return;
    case VmEvent::Kind::kResumed:
      if (inst.status.state == InstanceState::kPaused) {
        inst.status.state = InstanceState::kRunning;
        (void)Save(inst);
        events_->Lifecycle("instance-resumed", inst.name());
      }
      return;
    case VmEvent::Kind::kReset:
      events_->Lifecycle("instance-reset", inst.name());
      return;
    case VmEvent::Kind::kExited:
      break;
  }
  // A restart may have started a new QEMU before this exit of the old one
  // reached us: the event is stale, the instance is running.
  if (engine_->IsRunning(inst.name())) return;
  // An exit we asked for is finished by the stop operation itself.
  if (inst.status.stop_requested ||
      inst.status.state == InstanceState::kStopped ||
      inst.status.state == InstanceState::kStarting)
    return;
  bool crashed_fast = inst.status.started_at > Now() - kRapidFailureWindowS;
  inst.status.pid = 0;
  inst.status.started_at = 0;
  bool restart = false;
  if (event.clean) {
    inst.status.state = InstanceState::kStopped;
    inst.status.last_error.clear();
    events_->Lifecycle("instance-stopped", inst.name(),
                       {{"reason", event.reason}});
    restart = inst.config.restart_policy == RestartPolicy::kAlways;
  } else {
    inst.status.state = InstanceState::kError;
    inst.status.last_error = event.reason;
    events_->Lifecycle("instance-error", inst.name(),
                       {{"reason", event.reason}});
    restart = inst.config.restart_policy != RestartPolicy::kNever;
    LOG_WARN("{}: QEMU died: {}", inst.name(), event.reason);
  }
  int& rapid = rapid_failures_[inst.name()];
  rapid = crashed_fast ? rapid + 1 : 0;
  if (restart && rapid > kMaxRapidFailures) {
    inst.status.last_error = event.reason + "; restart policy gave up after " +
                             std::to_string(kMaxRapidFailures) +
                             " rapid failures";
    restart = false;
  }
  if (restart) ++inst.status.restart_count;
  (void)Save(inst);
  if (!restart || ops == nullptr) return;
  std::string name = inst.name();
  ops->Start(
      "Restarting instance (restart policy)",
      {{"instances", Json::array({"/1.0/instances/" + name})}},
      [this, name]() -> Result<Json> {
        auto g = Lock(name);
        ASSIGN_OR_RETURN(Instance i, store_->GetInstance(name));
        if (i.status.state != InstanceState::kError &&
            i.status.state != InstanceState::kStopped)
          return StateJson(i);  // someone else already acted
        if (i.status.stop_requested) return StateJson(i);
        auto r = StartLocked(std::move(i));
        if (r)
          events_->Lifecycle("instance-restarted", name, {{"policy", true}});
        return r;
      });
}

void InstanceLifecycle::Recover() {
  auto all = store_->ListInstances();
  if (!all) {
    LOG_ERROR("recover: cannot list instances: {}", all.error().ToString());
    return;
  }
  for (auto& inst : *all) {
    auto guard = Lock(inst.name());
    if (!HoldsResources(inst.status.state)) continue;
    auto adopted = engine_->Adopt(inst);
    if (adopted && *adopted) {
      auto status = engine_->QueryStatus(inst.name());
      inst.status.state = status && *status == "paused"
                              ? InstanceState::kPaused
                              : InstanceState::kRunning;
      LOG_INFO("recover: re-adopted '{}' ({})", inst.name(), StateName(inst));
    } else {
      inst.status.state = InstanceState::kStopped;
      inst.status.pid = 0;
      inst.status.started_at = 0;
      inst.status.last_error =
          adopted ? "QEMU exited while vireod was not running"
                  : "could not re-adopt QEMU: " + adopted.error().ToString();
      LOG_WARN("recover: '{}' marked stopped: {}", inst.name(),
               inst.status.last_error);
    }
    (void)Save(inst);
  }
}

}  // namespace vireo
