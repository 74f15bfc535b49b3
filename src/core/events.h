#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"

namespace vireo {

// One subscriber's queue. A slow reader loses the oldest events rather than
// growing without bound.
class EventSubscription {
 public:
  // Waits up to timeout for the next event.
  std::optional<Json> Next(std::chrono::milliseconds timeout);
  void Close();
  bool closed() const;

 private:
  friend class EventBus;
  void Push(const Json& event);
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Json> queue_;
  bool closed_ = false;
  static constexpr size_t kMaxQueued = 1024;
};

// Fan-out of lifecycle and operation events (Incus-style:
// {"type":"lifecycle","timestamp":...,"metadata":{"action":...,"source":...}}).
class EventBus {
 public:
  std::shared_ptr<EventSubscription> Subscribe();
  void Publish(const std::string& type, Json metadata);
  // Convenience for instance lifecycle events ("instance-started", ...).
  void Lifecycle(const std::string& action, const std::string& instance,
                 Json context = Json::object());

 private:
  std::mutex mu_;
  std::vector<std::weak_ptr<EventSubscription>> subscribers_;
};

}  // namespace vireo
