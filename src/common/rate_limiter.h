#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace vireo {

// Paces a byte stream shared by any number of threads to an average rate,
// e.g. backup reads that must not starve the running VMs' disk I/O.
// Consume() is called after each piece of work and sleeps for as long as
// the stream is ahead of its schedule.
class RateLimiter {
 public:
  // 0: unlimited (Consume never sleeps).
  explicit RateLimiter(uint64_t bytes_per_second) : rate_(bytes_per_second) {}

  void Consume(uint64_t bytes);
  uint64_t rate() const { return rate_; }

 private:
  const uint64_t rate_;
  std::mutex mu_;
  // When the bytes consumed so far are "paid for" at the configured rate.
  std::chrono::steady_clock::time_point next_{};
};

}  // namespace vireo
