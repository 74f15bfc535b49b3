#include "core/guest_freeze.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vireo {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Only GuestAgent matters here; it records the commands and answers through
// a scripted function.
class AgentEngine : public VmEngine {
 public:
  using Answer = std::function<Result<Json>(const std::string& command)>;
  explicit AgentEngine(Answer answer) : answer_(std::move(answer)) {}

  std::string status = "running";  // QMP query-status

  std::vector<std::string> commands() {
    std::lock_guard lock(mu_);
    return commands_;
  }

  Result<Json> GuestAgent(const std::string&, const std::string& command,
                          const Json&, std::chrono::milliseconds) override {
    {
      std::lock_guard lock(mu_);
      commands_.push_back(command);
    }
    return answer_(command);
  }

  void SetEventSink(EventSink) override {}
  std::string Accelerator() const override { return "tcg"; }
  std::string AcceleratorReason() const override { return "test"; }
  VmPaths PathsFor(const Instance&) const override { return {}; }
  Result<int> Start(const Instance&, const std::vector<int>&) override {
    return 1;
  }
  Result<bool> Adopt(const Instance&) override { return true; }
  Status Powerdown(const std::string&) override { return Ok(); }
  Status Kill(const std::string&) override { return Ok(); }
  Status Pause(const std::string&) override { return Ok(); }
  Status Resume(const std::string&) override { return Ok(); }
  bool WaitExit(const std::string&, int) override { return true; }
  Result<std::string> QueryStatus(const std::string&) override {
    return status;
  }
  Result<Json> Qmp(const std::string&, const std::string&,
                   const Json&) override {
    return Json::object();
  }
  bool IsRunning(const std::string&) override { return true; }
  Result<std::string> Screenshot(const std::string&) override {
    return std::string();
  }

 private:
  Answer answer_;
  std::mutex mu_;
  std::vector<std::string> commands_;
};

// A guest whose agent answers like qemu-ga with `filesystems` mounted.
AgentEngine::Answer Agent(int filesystems, std::string status = "thawed") {
  return [=](const std::string& command) -> Result<Json> {
    if (command == "guest-fsfreeze-status") return Json(status);
    return Json(filesystems);
  };
}

TEST(GuestFreezeTest, FreezesThenThawsOnce) {
  AgentEngine engine(Agent(2));
  auto freeze = GuestFreeze::Begin(&engine, "vm1");
  EXPECT_TRUE(freeze->frozen());
  EXPECT_EQ(freeze->filesystems(), 2);
  freeze->Thaw();
  freeze->Thaw();
  EXPECT_EQ(freeze->describe(),
            "filesystem-consistent (guest agent froze 2 filesystems)");
  freeze.reset();
  EXPECT_THAT(engine.commands(),
              ElementsAre("guest-fsfreeze-status", "guest-fsfreeze-freeze",
                          "guest-fsfreeze-thaw"));
}

TEST(GuestFreezeTest, DestructorThaws) {
  AgentEngine engine(Agent(1));
  GuestFreeze::Begin(&engine, "vm1").reset();
  EXPECT_EQ(engine.commands().back(), "guest-fsfreeze-thaw");
}

TEST(GuestFreezeTest, AbsentAgentIsCrashConsistentAndNeverThawed) {
  AgentEngine engine([](const std::string&) -> Result<Json> {
    return Err(ErrorCode::kTimeout,
               "vm1: no answer to guest-sync within 1500 ms");
  });
  auto freeze = GuestFreeze::Begin(&engine, "vm1");
  freeze->Thaw();
  EXPECT_FALSE(freeze->frozen());
  EXPECT_EQ(freeze->describe(),
            "crash-consistent (no guest agent: no answer to guest-sync within "
            "1500 ms)");
  EXPECT_THAT(engine.commands(), ElementsAre("guest-fsfreeze-status"));
}

TEST(GuestFreezeTest, FailedOrTimedOutFreezeIsStillThawed) {
  // The agent may finish a freeze after our timeout: thaw in any case.
  AgentEngine engine([](const std::string& command) -> Result<Json> {
    if (command == "guest-fsfreeze-status") return Json("thawed");
    if (command == "guest-fsfreeze-freeze")
      return Err(ErrorCode::kTimeout, "vm1: guest agent: no reply");
    return Json(1);
  });
  auto freeze = GuestFreeze::Begin(&engine, "vm1");
  freeze->Thaw();
  EXPECT_THAT(freeze->describe(),
              HasSubstr("crash-consistent (guest agent could not freeze: "));
  EXPECT_EQ(engine.commands().back(), "guest-fsfreeze-thaw");
}

TEST(GuestFreezeTest, AlreadyFrozenGuestIsLeftFrozen) {
  AgentEngine engine(Agent(1, "frozen"));
  auto freeze = GuestFreeze::Begin(&engine, "vm1");
  freeze->Thaw();
  EXPECT_THAT(freeze->describe(), HasSubstr("already frozen"));
  EXPECT_THAT(engine.commands(), ElementsAre("guest-fsfreeze-status"));
}

TEST(GuestFreezeTest, PausedGuestIsNotAsked) {
  AgentEngine engine(Agent(1));
  engine.status = "paused";
  auto freeze = GuestFreeze::Begin(&engine, "vm1");
  freeze->Thaw();
  EXPECT_EQ(freeze->describe(),
            "crash-consistent (the guest is paused, its agent cannot answer)");
  EXPECT_TRUE(engine.commands().empty());
}

TEST(GuestFreezeTest, NoFilesystemsIsNotCalledConsistent) {
  AgentEngine engine(Agent(0));
  auto freeze = GuestFreeze::Begin(&engine, "vm1");
  freeze->Thaw();
  EXPECT_THAT(freeze->describe(),
              HasSubstr("crash-consistent (the guest agent found no"));
}

TEST(GuestFreezeTest, WatchdogThawsALongFreeze) {
  AgentEngine engine(Agent(1));
  GuestFreeze::Options options;
  options.max_frozen = 100ms;
  auto freeze = GuestFreeze::Begin(&engine, "vm1", options);
  std::this_thread::sleep_for(400ms);
  // Thawed by the watchdog already, not by us.
  EXPECT_EQ(engine.commands().back(), "guest-fsfreeze-thaw");
  freeze->Thaw();
  EXPECT_EQ(engine.commands().size(), 3u);
  EXPECT_THAT(freeze->describe(), HasSubstr("crash-consistent (the guest "
                                            "stayed frozen over 100 ms"));
}

TEST(GuestFreezeTest, FailedThawIsReported) {
  AgentEngine engine([](const std::string& command) -> Result<Json> {
    if (command == "guest-fsfreeze-status") return Json("thawed");
    if (command == "guest-fsfreeze-thaw")
      return Err(ErrorCode::kUnavailable,
                 "vm1: guest agent: connection closed");
    return Json(1);
  });
  auto freeze = GuestFreeze::Begin(&engine, "vm1");
  freeze->Thaw();
  EXPECT_THAT(freeze->describe(),
              HasSubstr("; guest thaw failed: guest agent: connection closed"));
  // Retried once.
  EXPECT_EQ(engine.commands().size(), 4u);
}

}  // namespace
}  // namespace vireo
