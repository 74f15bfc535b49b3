#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "core/events.h"
#include "core/instance.h"
#include "core/instance_service.h"
#include "core/network_attacher.h"
#include "core/operations.h"
#include "core/resources.h"
#include "core/vm_engine.h"
#include "store/store.h"

namespace vireo {

// The state machine of one instance's life: which action is legal when,
// what the engine is asked to do, and how its reports (exits, pauses) change
// the stored state and trigger the restart policy.
class InstanceLifecycle {
 public:
  InstanceLifecycle(Store* store, VmEngine* engine, EventBus* events,
                    ResourceTracker* resources, int stop_timeout_s);
  ~InstanceLifecycle();

  // Serializes every change to one instance.
  std::unique_lock<std::mutex> Lock(const std::string& name);
  static Status CheckTransition(const Instance& instance, StateAction action);
  // Performs an action; blocks until it is done (called from an operation).
  Result<Json> Apply(const std::string& name, StateAction action, bool force,
                     int timeout_s);
  // Engine callback: queued and handled on the reactor thread so the
  // engine's watcher is never blocked by our locks.
  void OnEngineEvent(const VmEvent& event, OperationManager* ops);
  void Recover();
  // Managed networks whose taps a start prepares (null: none).
  void SetNetworks(NetworkAttacher* networks) { networks_ = networks; }

 private:
  Result<Json> StartLocked(Instance inst);
  Result<Json> StopLocked(Instance inst, bool force, int timeout_s);
  void HandleEvent(const VmEvent& event, OperationManager* ops);
  void ReactorLoop();
  Status Save(Instance& inst) { return store_->UpdateInstance(inst); }

  Store* store_;
  VmEngine* engine_;
  EventBus* events_;
  ResourceTracker* resources_;
  int stop_timeout_s_;
  NetworkAttacher* networks_ = nullptr;

  std::mutex locks_mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> locks_;
  // Consecutive crashes shortly after start; the restart policy gives up
  // past a limit instead of looping forever.
  std::map<std::string, int> rapid_failures_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::pair<VmEvent, OperationManager*>> queue_;
  bool stopping_ = false;
  std::thread reactor_;
};

}  // namespace vireo
