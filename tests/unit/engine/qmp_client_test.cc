#include "engine/qemu/qmp_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

namespace vireo {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr const char* kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"
    "\n";

// The QEMU side of a QMP connection, scripted by each test.
class FakePeer {
 public:
  explicit FakePeer(UniqueFd fd) : fd_(std::move(fd)) {}

  void Send(const std::string& text) {
    ASSERT_EQ(::send(fd_.get(), text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
  }
  // Next request from the client, or null on EOF/timeout.
  Json ReadRequest() {
    while (true) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        auto j = Json::parse(buf_.substr(0, nl));
        buf_.erase(0, nl + 1);
        return j;
      }
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return nullptr;
      char b[4096];
      ssize_t n = ::recv(fd_.get(), b, sizeof(b), 0);
      if (n <= 0) return nullptr;
      buf_.append(b, static_cast<size_t>(n));
    }
  }
  // Greeting + qmp_capabilities.
  void Handshake() {
    Send(kGreeting);
    Json caps = ReadRequest();
    ASSERT_EQ(caps["execute"], "qmp_capabilities");
    Reply(caps, Json::object());
  }
  void Reply(const Json& request, const Json& value) {
    Send(Json{{"return", value}, {"id", request["id"]}}.dump() + "\n");
  }
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
  std::string buf_;
};

// Runs `script` as the QEMU side while the client connects over a socketpair.
class QmpClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<QmpClient> Connect(std::function<void(FakePeer&)> script) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peer_ = std::make_unique<FakePeer>(UniqueFd(sv[1]));
    server_ = std::thread([this, script] {
      peer_->Handshake();
      script(*peer_);
    });
    auto client = QmpClient::FromFd(UniqueFd(sv[0]), 5s);
    EXPECT_TRUE(client) << client.error().ToString();
    return client ? std::move(*client) : nullptr;
  }
  void TearDown() override {
    if (server_.joinable()) server_.join();
  }

  std::unique_ptr<FakePeer> peer_;
  std::thread server_;
};

TEST_F(QmpClientTest, CommandReplyWithInterleavedEvent) {
  std::mutex mu;
  std::vector<std::pair<std::string, Json>> events;
  auto client = Connect([](FakePeer& peer) {
    Json req = peer.ReadRequest();
    EXPECT_EQ(req["execute"], "query-status");
    EXPECT_FALSE(req.contains("arguments"));
    peer.Send(
        R"({"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}})"
        "\n");
    peer.Reply(req, {{"status", "paused"}, {"running", false}});
  });
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->greeting().contains("QMP"));
  client->SetEventHandler([&](const std::string& event, const Json& data) {
    std::lock_guard lock(mu);
    events.emplace_back(event, data);
  });
  auto reply = client->Execute("query-status");
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ((*reply)["status"], "paused");
  std::lock_guard lock(mu);
  ASSERT_EQ(events.size(), 1u);  // delivered before the reply that followed it
  EXPECT_EQ(events[0].first, "STOP");
}

TEST_F(QmpClientTest, ArgumentsAreSent) {
  auto client = Connect([](FakePeer& peer) {
    Json req = peer.ReadRequest();
    EXPECT_EQ(req["arguments"]["device"], "virtio-disk0");
    peer.Reply(req, Json::object());
  });
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->Execute("eject", {{"device", "virtio-disk0"}}));
  EXPECT_FALSE(
      client->Execute("eject", Json::array()));  // args must be an object
}

TEST_F(QmpClientTest, PartialLinesAndSeveralMessagesPerRead) {
  std::atomic<int> events{0};
  auto client = Connect([](FakePeer& peer) {
    Json a = peer.ReadRequest();
    Json b = peer.ReadRequest();
    // Replies out of order, in one write, plus an event split mid-token.
    std::string both = Json{{"return", "B"}, {"id", b["id"]}}.dump() + "\n" +
                       Json{{"return", "A"}, {"id", a["id"]}}.dump() +
                       "\n{\"eve";
    peer.Send(both);
    std::this_thread::sleep_for(50ms);
    peer.Send("nt\": \"RESUME\"}\n");
  });
  ASSERT_TRUE(client);
  client->SetEventHandler([&](const std::string& e, const Json&) {
    if (e == "RESUME") ++events;
  });
  Result<Json> ra = Err(ErrorCode::kInternal, "unset");
  std::thread t([&] { ra = client->Execute("a"); });
  std::this_thread::sleep_for(50ms);  // make sure "a" is sent first
  auto rb = client->Execute("b");
  t.join();
  ASSERT_TRUE(ra);
  ASSERT_TRUE(rb);
  EXPECT_EQ(*ra, "A");
  EXPECT_EQ(*rb, "B");
  server_.join();
  for (int i = 0; i < 100 && events == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(events, 1);
}

TEST_F(QmpClientTest, ErrorRepliesBecomeErrors) {
  auto client = Connect([](FakePeer& peer) {
    Json req = peer.ReadRequest();
    peer.Send(Json{{"error",
                    {{"class", "GenericError"}, {"desc", "VM is not running"}}},
                   {"id", req["id"]}}
                  .dump() +
              "\n");
    req = peer.ReadRequest();
    peer.Send(Json{{"error",
                    {{"class", "CommandNotFound"},
                     {"desc", "The command nope has not been found"}}},
                   {"id", req["id"]}}
                  .dump() +
              "\n");
  });
  ASSERT_TRUE(client);
  auto r1 = client->Execute("cont");
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r1.error().message(), HasSubstr("VM is not running"));
  auto r2 = client->Execute("nope");
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(r2.error().message(), HasSubstr("has not been found"));
}

TEST_F(QmpClientTest, PeerClosingMidCommandFailsPromptly) {
  std::atomic<int> closes{0};
  auto client = Connect([](FakePeer& peer) {
    peer.ReadRequest();
    std::this_thread::sleep_for(100ms);
    peer.Close();
  });
  ASSERT_TRUE(client);
  client->SetCloseHandler([&] { ++closes; });
  auto start = std::chrono::steady_clock::now();
  auto r = client->Execute("query-status", Json::object(), 10s);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_LT(took, 2s);
  EXPECT_TRUE(client->WaitClosed(1s));
  EXPECT_EQ(closes, 1);
  // Later commands fail at once.
  auto again = client->Execute("query-status");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kUnavailable);
  // A handler set after the close still hears about it, once.
  std::atomic<int> late{0};
  client->SetCloseHandler([&] { ++late; });
  EXPECT_EQ(late, 1);
  EXPECT_EQ(closes, 1);
}

TEST_F(QmpClientTest, BadJsonFromPeerIsAnErrorNotACrash) {
  auto client = Connect([](FakePeer& peer) {
    peer.ReadRequest();
    peer.Send("{\"return\": {}, \"id\": 2, garbage\n");
    std::this_thread::sleep_for(200ms);
  });
  ASSERT_TRUE(client);
  auto r = client->Execute("query-status", Json::object(), 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().message(), HasSubstr("bad JSON"));
  EXPECT_TRUE(client->closed());
}

TEST_F(QmpClientTest, NoReplyTimesOut) {
  auto client = Connect([](FakePeer& peer) {
    peer.ReadRequest();
    std::this_thread::sleep_for(500ms);
  });
  ASSERT_TRUE(client);
  auto r = client->Execute("query-status", Json::object(), 200ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
}

TEST(QmpClientHandshakeTest, RejectsPeerWithoutGreeting) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd peer(sv[1]);
  std::string junk = "{\"hello\": 1}\n";
  ASSERT_GT(::send(peer.get(), junk.data(), junk.size(), 0), 0);
  auto client = QmpClient::FromFd(UniqueFd(sv[0]), 1s);
  ASSERT_FALSE(client);
  EXPECT_THAT(client.error().message(), HasSubstr("greeting"));
}

TEST(QmpClientHandshakeTest, SilentPeerTimesOut) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd peer(sv[1]);
  auto client = QmpClient::FromFd(UniqueFd(sv[0]), 200ms);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kTimeout);
}

class QmpConnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-qmp-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/qmp.sock";
  }
  void TearDown() override { (void)!::system(("rm -rf " + dir_).c_str()); }
  std::string dir_, path_;
};

TEST_F(QmpConnectTest, RetriesUntilSocketAppears) {
  std::thread server([this] {
    std::this_thread::sleep_for(300ms);
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr),
                     sizeof(addr)),
              0);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    FakePeer peer(
        UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)));
    peer.Handshake();
    Json req = peer.ReadRequest();
    peer.Reply(req, {{"status", "running"}});
    peer.ReadRequest();  // wait for the client to go away
  });
  auto client = QmpClient::Connect(path_, 5s);
  ASSERT_TRUE(client) << client.error().ToString();
  auto r = (*client)->Execute("query-status");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["status"], "running");
  client->reset();
  server.join();
}

TEST_F(QmpConnectTest, GivesUpWhenTold) {
  auto start = std::chrono::steady_clock::now();
  auto client = QmpClient::Connect(path_, 5s, [] { return true; });
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_F(QmpConnectTest, TimesOutWithoutServer) {
  auto client = QmpClient::Connect(path_, 200ms);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code(), ErrorCode::kTimeout);
  EXPECT_THAT(client.error().message(), HasSubstr(path_));
}

}  // namespace
}  // namespace vireo
