#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/vm_engine.h"

namespace vireo {

// Delivers VM events to the sink on its own thread, in the order pushed.
// Because neither the QMP reader nor the exit watcher calls the sink, the
// sink may call back into the engine (Kill, Qmp, ...) without deadlocking.
class VmEventQueue {
 public:
  VmEventQueue();
  // Delivers what is already queued, then stops.
  ~VmEventQueue();
  VmEventQueue(const VmEventQueue&) = delete;
  VmEventQueue& operator=(const VmEventQueue&) = delete;

  void SetSink(VmEngine::EventSink sink);
  void Push(VmEvent event);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<VmEvent> queue_;
  VmEngine::EventSink sink_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vireo
