#include "core/operations.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace vireo {
namespace {

using namespace std::chrono_literals;

TEST(OperationManagerTest, SuccessAndFailureAreRecordedAndEventsPublished) {
  EventBus bus;
  auto sub = bus.Subscribe();
  OperationManager ops(&bus);
  std::promise<void> go;
  auto gate = go.get_future().share();
  Operation op = ops.Start("Doing", {{"instances", {"/1.0/instances/a"}}},
                           [gate]() -> Result<Json> {
                             gate.wait();
                             return Json{{"answer", 42}};
                           });
  EXPECT_EQ(op.status, OperationStatus::kRunning);
  auto early = ops.Wait(op.id, 50ms);
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, OperationStatus::kRunning);
  go.set_value();
  auto done = ops.Wait(op.id, 5s);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, OperationStatus::kSuccess);
  EXPECT_EQ(done->metadata["answer"], 42);

  Operation bad = ops.Start("Failing", Json::object(), []() -> Result<Json> {
    return Err(ErrorCode::kFailedPrecondition, "it is running");
  });
  auto failed = ops.Wait(bad.id, 5s);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, OperationStatus::kFailure);
  EXPECT_EQ(failed->error, "it is running");
  EXPECT_EQ(failed->error_code, "failed_precondition");
  EXPECT_EQ(ToJson(*failed)["status_code"], 400);

  // Created + finished, for both operations.
  int seen = 0;
  while (auto e = sub->Next(200ms)) {
    EXPECT_EQ((*e)["type"], "operation");
    ++seen;
  }
  EXPECT_EQ(seen, 4);
  EXPECT_EQ(ops.List().size(), 2u);
  EXPECT_FALSE(ops.Get("nope"));
  EXPECT_EQ(ops.Wait("nope", 1ms).error().code(), ErrorCode::kNotFound);
}

TEST(OperationManagerTest, DestructorWaitsForRunningWork) {
  std::atomic<bool> finished{false};
  {
    OperationManager ops(nullptr);
    ops.Start("Slow", Json::object(), [&]() -> Result<Json> {
      std::this_thread::sleep_for(200ms);
      finished = true;
      return Json::object();
    });
  }
  EXPECT_TRUE(finished);
}

TEST(EventBusTest, FanOutAndBoundedQueues) {
  EventBus bus;
  auto a = bus.Subscribe();
  auto b = bus.Subscribe();
  bus.Lifecycle("instance-started", "vm1", {{"pid", 7}});
  auto ea = a->Next(1s);
  auto eb = b->Next(1s);
  ASSERT_TRUE(ea && eb);
  EXPECT_EQ((*ea)["metadata"]["action"], "instance-started");
  EXPECT_EQ((*ea)["metadata"]["source"], "/1.0/instances/vm1");
  EXPECT_EQ((*eb)["metadata"]["context"]["pid"], 7);
  EXPECT_FALSE(a->Next(10ms));
  // A reader that never reads loses old events instead of growing forever.
  for (int i = 0; i < 5000; ++i) bus.Publish("x", {{"i", i}});
  int n = 0;
  Json last;
  while (auto e = a->Next(1ms)) {
    last = *e;
    ++n;
  }
  EXPECT_EQ(n, 1024);
  EXPECT_EQ(last["metadata"]["i"], 4999);
  a->Close();
  b.reset();
  bus.Publish("y",
              Json::object());  // closed and dropped subscribers are skipped
  EXPECT_FALSE(a->Next(1ms));
}

}  // namespace
}  // namespace vireo
