#include "common/rate_limiter.h"

#include <algorithm>
#include <thread>

namespace vireo {

void RateLimiter::Consume(uint64_t bytes) {
  if (rate_ == 0 || bytes == 0) return;
  using Clock = std::chrono::steady_clock;
  auto cost =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
          static_cast<double>(bytes) / static_cast<double>(rate_)));
  Clock::time_point wake;
  {
    std::lock_guard lock(mu_);
    // An idle stream does not bank credit: a pause followed by a burst is
    // paced from now, not from when the stream last ran.
    next_ = std::max(next_, Clock::now()) + cost;
    wake = next_;
  }
  std::this_thread::sleep_until(wake);
}

}  // namespace vireo
