#include "engine/qemu/guest_agent.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <thread>

namespace vireo {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The guest side of the agent channel (what QEMU relays from qemu-ga),
// scripted by each test over a socketpair.
class FakeAgent {
 public:
  explicit FakeAgent(UniqueFd fd) : fd_(std::move(fd)) {}

  void Send(const std::string& text) {
    ASSERT_EQ(::send(fd_.get(), text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
  }
  // Next request; *delimited tells whether it started with 0xFF. Null on
  // EOF or after 5 s.
  Json Read(bool* delimited = nullptr) {
    while (true) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        bool d = !line.empty() && line[0] == '\xff';
        if (d) line.erase(0, 1);
        if (delimited) *delimited = d;
        return Json::parse(line);
      }
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return nullptr;
      char b[4096];
      ssize_t n = ::recv(fd_.get(), b, sizeof b, 0);
      if (n <= 0) return nullptr;
      buf_.append(b, static_cast<size_t>(n));
    }
  }
  // Answers a guest-sync-delimited the way qemu-ga does.
  void AnswerSync() {
    bool delimited = false;
    Json sync = Read(&delimited);
    ASSERT_TRUE(delimited) << "sync must start with 0xFF";
    ASSERT_EQ(sync["execute"], "guest-sync-delimited");
    Send("\xff" + Json{{"return", sync["arguments"]["id"]}}.dump() + "\n");
  }
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
  std::string buf_;
};

class GuestAgentTest : public ::testing::Test {
 protected:
  // Runs `script` as the agent while the client connects and syncs.
  Result<std::unique_ptr<GuestAgentClient>> Connect(
      std::function<void(FakeAgent&)> script,
      std::chrono::milliseconds sync_timeout = 2s) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    agent_ = std::make_unique<FakeAgent>(UniqueFd(sv[1]));
    thread_ = std::thread([this, script] { script(*agent_); });
    return GuestAgentClient::FromFd(UniqueFd(sv[0]), sync_timeout);
  }
  void TearDown() override {
    if (thread_.joinable()) thread_.join();
  }

  std::unique_ptr<FakeAgent> agent_;
  std::thread thread_;
};

TEST_F(GuestAgentTest, SyncSkipsGarbageAndStaleReplies) {
  auto client = Connect([](FakeAgent& a) {
    bool delimited = false;
    Json sync = a.Read(&delimited);
    ASSERT_TRUE(delimited);
    int64_t id = sync["arguments"]["id"];
    // What an earlier client left behind, the agent's complaint about the
    // 0xFF, and a delimited answer to an older sync: all skipped.
    a.Send(R"({"return": 3, "id": 99})"
           "\n");
    a.Send(R"({"error": {"class": "GenericError", "desc": "JSON parse error"}})"
           "\n");
    a.Send(
        "\xff"
        R"({"return": 12})"
        "\n");
    a.Send("\xff" + Json{{"return", id}}.dump() + "\n");
    Json freeze = a.Read();
    ASSERT_EQ(freeze["execute"], "guest-fsfreeze-freeze");
    EXPECT_FALSE(freeze.contains("arguments"));
    // A late answer to a command of an earlier call, then ours.
    a.Send(R"({"return": 5, "id": 123456})"
           "\n");
    a.Send(Json{{"return", 2}, {"id", freeze["id"]}}.dump() + "\n");
    // An agent that does not echo ids: answers come in order.
    Json status = a.Read();
    ASSERT_EQ(status["execute"], "guest-fsfreeze-status");
    a.Send(R"({"return": "frozen"})"
           "\n");
  });
  ASSERT_TRUE(client) << client.error().ToString();
  auto froze = (*client)->Execute("guest-fsfreeze-freeze");
  ASSERT_TRUE(froze) << froze.error().ToString();
  EXPECT_EQ(*froze, 2);
  auto status = (*client)->Execute("guest-fsfreeze-status");
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(*status, "frozen");
}

TEST_F(GuestAgentTest, AgentErrorsKeepTheirDescription) {
  auto client = Connect([](FakeAgent& a) {
    a.AnswerSync();
    Json r = a.Read();
    a.Send(Json{{"error",
                 {{"class", "CommandNotFound"},
                  {"desc", "The command guest-nope has not been found"}}},
                {"id", r["id"]}}
               .dump() +
           "\n");
    r = a.Read();
    EXPECT_EQ(r["arguments"]["mountpoints"], Json::array({"/mnt"}));
    a.Send(Json{{"error",
                 {{"class", "GenericError"},
                  {"desc", "failed to freeze /mnt: Operation not supported"}}},
                {"id", r["id"]}}
               .dump() +
           "\n");
  });
  ASSERT_TRUE(client) << client.error().ToString();
  auto nope = (*client)->Execute("guest-nope");
  ASSERT_FALSE(nope);
  EXPECT_EQ(nope.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(nope.error().message(), HasSubstr("has not been found"));
  auto freeze = (*client)->Execute("guest-fsfreeze-freeze-list",
                                   {{"mountpoints", Json::array({"/mnt"})}});
  ASSERT_FALSE(freeze);
  EXPECT_EQ(freeze.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(freeze.error().message(), HasSubstr("Operation not supported"));
}

TEST_F(GuestAgentTest, SilentAgentTimesOutQuickly) {
  // QEMU accepts the connection even when no agent runs in the guest.
  auto t0 = std::chrono::steady_clock::now();
  auto client = Connect([](FakeAgent& a) { (void)a.Read(); }, 300ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kTimeout);
  EXPECT_THAT(client.error().message(), HasSubstr("guest-sync"));
  EXPECT_LT(took, 2s);
}

TEST_F(GuestAgentTest, CommandTimeoutResyncsBeforeTheNextCommand) {
  auto client = Connect([](FakeAgent& a) {
    a.AnswerSync();
    Json slow = a.Read();
    ASSERT_EQ(slow["execute"], "guest-fsfreeze-freeze");
    // No answer in time; the next call must sync again before its command,
    // and the late answer (after the new sync reply) is skipped by its id.
    a.AnswerSync();
    a.Send(Json{{"return", 1}, {"id", slow["id"]}}.dump() + "\n");
    Json thaw = a.Read();
    ASSERT_EQ(thaw["execute"], "guest-fsfreeze-thaw");
    a.Send(Json{{"return", 7}, {"id", thaw["id"]}}.dump() + "\n");
  });
  ASSERT_TRUE(client) << client.error().ToString();
  auto slow =
      (*client)->Execute("guest-fsfreeze-freeze", Json::object(), 200ms);
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code(), ErrorCode::kTimeout);
  auto thaw = (*client)->Execute("guest-fsfreeze-thaw");
  ASSERT_TRUE(thaw) << thaw.error().ToString();
  EXPECT_EQ(*thaw, 7);
}

TEST_F(GuestAgentTest, ClosedChannelIsUnavailable) {
  auto client = Connect([](FakeAgent& a) {
    a.AnswerSync();
    (void)a.Read();
    a.Close();
  });
  ASSERT_TRUE(client) << client.error().ToString();
  auto r = (*client)->Execute("guest-ping");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
}

TEST(GuestAgentConnectTest, MissingSocketMeansNoChannel) {
  auto r = GuestAgentClient::Connect("/nonexistent/vireo-test/qga.sock");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST(ParseAgentReplyTest, MatchesIdsAndRejectsGarbage) {
  auto ours = ParseAgentReply(R"({"return": 1, "id": 4})", 4);
  ASSERT_TRUE(ours && *ours);
  EXPECT_EQ(**ours, 1);
  EXPECT_FALSE(ParseAgentReply(R"({"return": 1, "id": 5})", 4));
  EXPECT_FALSE(ParseAgentReply(R"({"return": 1, "id": "x"})", 4));
  auto no_id = ParseAgentReply("{\"return\": {}}\r", 4);
  ASSERT_TRUE(no_id && *no_id);
  auto bad = ParseAgentReply("not json", 4);
  ASSERT_TRUE(bad);
  ASSERT_FALSE(*bad);
  EXPECT_EQ(bad->error().code(), ErrorCode::kInvalidArgument);
  auto neither = ParseAgentReply(R"({"id": 4})", 4);
  ASSERT_TRUE(neither);
  EXPECT_FALSE(*neither);
}

}  // namespace
}  // namespace vireo
