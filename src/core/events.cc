#include "core/events.h"

#include <algorithm>
#include <ctime>

namespace vireo {

namespace {
std::string Rfc3339Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof(buf) - n, ".%06ldZ", ts.tv_nsec / 1000);
  return buf;
}
}  // namespace

std::optional<Json> EventSubscription::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) return std::nullopt;
  Json event = std::move(queue_.front());
  queue_.pop_front();
  return event;
}

void EventSubscription::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

bool EventSubscription::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

void EventSubscription::Push(const Json& event) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  if (queue_.size() >= kMaxQueued) queue_.pop_front();
  queue_.push_back(event);
  cv_.notify_one();
}

std::shared_ptr<EventSubscription> EventBus::Subscribe() {
  auto sub = std::make_shared<EventSubscription>();
  std::lock_guard lock(mu_);
  subscribers_.push_back(sub);
  return sub;
}

void EventBus::Publish(const std::string& type, Json metadata) {
  Json event = {{"type", type},
                {"timestamp", Rfc3339Now()},
                {"metadata", std::move(metadata)}};
  std::vector<std::shared_ptr<EventSubscription>> live;
  {
    std::lock_guard lock(mu_);
    std::erase_if(subscribers_, [&](const std::weak_ptr<EventSubscription>& w) {
      auto s = w.lock();
      if (!s || s->closed()) return true;
      live.push_back(std::move(s));
      return false;
    });
  }
  for (auto& s : live) s->Push(event);
}

void EventBus::Lifecycle(const std::string& action, const std::string& instance,
                         Json context) {
  Publish("lifecycle", {{"action", action},
                        {"source", "/1.0/instances/" + instance},
                        {"context", std::move(context)}});
}

}  // namespace vireo
