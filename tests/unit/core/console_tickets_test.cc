#include "core/console_tickets.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace vireo {
namespace {

using namespace std::chrono_literals;

TEST(ConsoleTicketsTest, SingleUseAndOnlyWithTheRightSecret) {
  ConsoleTickets tickets(10s);
  auto issued = tickets.Issue({"vm1", "vga", "/run/x/vnc.sock"});
  EXPECT_EQ(issued.secret.size(), 64u);
  tickets.Bind(issued.key, "op1");
  auto done =
      std::async(std::launch::async, [&] { return tickets.Await(issued.key); });
  EXPECT_FALSE(tickets.Redeem("op1", "wrong"));
  EXPECT_FALSE(tickets.Redeem("op2", issued.secret));
  auto redeemed = tickets.Redeem("op1", issued.secret);
  ASSERT_TRUE(redeemed);
  EXPECT_EQ(redeemed->target.socket, "/run/x/vnc.sock");
  auto again = tickets.Redeem("op1", issued.secret);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kPermissionDenied);
  tickets.Finish(redeemed->key);
  auto result = done.get();
  ASSERT_TRUE(result);
  EXPECT_EQ((*result)["type"], "vga");
}

TEST(ConsoleTicketsTest, ExpiresUnused) {
  ConsoleTickets tickets(100ms);
  auto issued = tickets.Issue({"vm1", "serial", "/s"});
  tickets.Bind(issued.key, "op1");
  auto result = tickets.Await(issued.key);
  EXPECT_FALSE(result);
  EXPECT_FALSE(tickets.Redeem("op1", issued.secret));
}

TEST(ConsoleTicketsTest, ShutdownWakesWaiters) {
  ConsoleTickets tickets(1h);
  auto issued = tickets.Issue({"vm1", "serial", "/s"});
  auto done =
      std::async(std::launch::async, [&] { return tickets.Await(issued.key); });
  std::this_thread::sleep_for(50ms);
  tickets.Shutdown();
  EXPECT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(done.get());
}

TEST(ConsoleTicketsTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

}  // namespace
}  // namespace vireo
