#include "engine/qemu/event_queue.h"

namespace vireo {

VmEventQueue::VmEventQueue() : thread_([this] { Loop(); }) {}

VmEventQueue::~VmEventQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void VmEventQueue::SetSink(VmEngine::EventSink sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
}

void VmEventQueue::Push(VmEvent event) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(event));
  }
  cv_.notify_all();
}

void VmEventQueue::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    VmEvent event = std::move(queue_.front());
    queue_.pop_front();
    VmEngine::EventSink sink = sink_;
    lock.unlock();
    if (sink) sink(event);
    lock.lock();
  }
}

}  // namespace vireo
