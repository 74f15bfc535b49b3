#include "core/resources.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

Instance Make(const std::string& name, int cpus, uint64_t mem,
              InstanceState state) {
  Instance i;
  i.config.name = name;
  i.config.cpus = cpus;
  i.config.memory_bytes = mem;
  i.status.state = state;
  return i;
}

TEST(ResourceTrackerTest, SingleInstanceMustFitTheHost) {
  ResourceTracker t({4, 8ull << 30, "cpu"}, {2.0, 1.0});
  EXPECT_TRUE(
      t.CheckFits(Make("a", 4, 8ull << 30, InstanceState::kStopped).config));
  auto cpus =
      t.CheckFits(Make("a", 5, 1 << 30, InstanceState::kStopped).config);
  ASSERT_FALSE(cpus);
  EXPECT_EQ(cpus.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(cpus.error().message().find("5 vCPUs"), std::string::npos);
  auto mem =
      t.CheckFits(Make("a", 1, 9ull << 30, InstanceState::kStopped).config);
  ASSERT_FALSE(mem);
  EXPECT_NE(mem.error().message().find("memory"), std::string::npos);
}

TEST(ResourceTrackerTest, OnlyActiveInstancesCountAndOvercommitApplies) {
  ResourceTracker t({2, 4ull << 30, "cpu"}, {2.0, 1.5});  // 4 vCPUs, 6 GiB
  std::vector<Instance> all = {
      Make("r", 2, 3ull << 30, InstanceState::kRunning),
      Make("p", 1, 1ull << 30, InstanceState::kPaused),
      Make("s", 2, 4ull << 30, InstanceState::kStopped),
      Make("e", 2, 4ull << 30, InstanceState::kError)};
  // 3 vCPUs and 4 GiB active: 1 vCPU and 2 GiB left.
  EXPECT_TRUE(t.CheckCanStart(
      Make("n", 1, 2ull << 30, InstanceState::kStopped).config, all));
  auto mem = t.CheckCanStart(
      Make("n", 1, 3ull << 30, InstanceState::kStopped).config, all);
  ASSERT_FALSE(mem);
  EXPECT_NE(mem.error().message().find("memory"), std::string::npos);
  auto cpu = t.CheckCanStart(
      Make("n", 2, 1ull << 30, InstanceState::kStopped).config, all);
  ASSERT_FALSE(cpu);
  EXPECT_NE(cpu.error().message().find("vCPUs"), std::string::npos);
  // Restarting an instance that already holds resources does not count twice.
  EXPECT_TRUE(t.CheckCanStart(all[0].config, all));
  Json d = t.Describe(all);
  EXPECT_EQ(d["cpu"]["allocated"], 3);
  EXPECT_EQ(d["memory"]["allocated"], 4ull << 30);
  EXPECT_EQ(d["cpu"]["limit"], 4);
  EXPECT_EQ(d["instances"]["active"], 2);
}

TEST(ResourceTrackerTest, ProbeHostSeesThisMachine) {
  HostInfo h = ProbeHost();
  EXPECT_GE(h.cpus, 1);
  EXPECT_GT(h.memory_bytes, 64ull << 20);
}

}  // namespace
}  // namespace vireo
