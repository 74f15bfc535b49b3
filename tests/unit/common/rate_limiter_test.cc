// The limiter's promise is a lower bound on time: N bytes at R bytes/s
// take at least N/R seconds, whichever threads consume them. Only that
// bound is asserted (sleeps never end early), so a loaded machine cannot
// make these tests fail.
#include "common/rate_limiter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace vireo {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

TEST(RateLimiter, PacesOneStream) {
  RateLimiter limiter(1'000'000);
  auto start = Clock::now();
  for (int i = 0; i < 4; ++i) limiter.Consume(100'000);
  EXPECT_GE(SecondsSince(start), 0.4);
}

TEST(RateLimiter, SharesTheRateBetweenThreads) {
  RateLimiter limiter(1'000'000);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2; ++i) limiter.Consume(100'000);
    });
  for (auto& t : threads) t.join();
  EXPECT_GE(SecondsSince(start), 0.6);
}

TEST(RateLimiter, ZeroMeansUnlimited) {
  RateLimiter limiter(0);
  auto start = Clock::now();
  limiter.Consume(uint64_t{1} << 40);
  // A terabyte at any real rate would take hours; unlimited returns at once.
  EXPECT_LT(SecondsSince(start), 60.0);
}

}  // namespace
}  // namespace vireo
