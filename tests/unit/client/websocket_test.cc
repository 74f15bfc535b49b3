#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "client/client.h"
#include "common/fd.h"
#include "test_server.h"

namespace vireo {
namespace {

using testing::CannedReply;
using testing::SeenRequest;
using testing::TestServer;

CannedReply NotFound(const SeenRequest&) {
  return {404, TestServer::ErrorEnvelope("no such instance", 404, "not_found")};
}

std::unique_ptr<ApiClient> MakeClient(const TestServer& server) {
  auto client = ApiClient::Create(Endpoint{server.socket_path(), "", ""});
  EXPECT_TRUE(client.has_value());
  return std::move(*client);
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read.Reset(fds[0]);
    write.Reset(fds[1]);
  }
};

// Reads from fd until `want` was seen or 5 s passed.
std::string ReadUntil(int fd, const std::string& want) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.find(want) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

void WriteString(int fd, const std::string& s) {
  ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

TEST(WebSocketTest, EchoReadWrite) {
  TestServer server(NotFound);
  auto client = MakeClient(server);
  auto ws = client->OpenWebSocket("/ws/echo");
  ASSERT_TRUE(ws) << ws.error().message();
  ASSERT_TRUE((*ws)->Write("hello", false));
  auto msg = (*ws)->Read();
  ASSERT_TRUE(msg) << msg.error().message();
  EXPECT_EQ(*msg, "hello");
  (*ws)->Close();
  EXPECT_FALSE((*ws)->Read());
}

TEST(WebSocketTest, ReadAfterServerCloseIsUnavailable) {
  TestServer server(NotFound);
  auto client = MakeClient(server);
  auto ws = client->OpenWebSocket("/ws/bye");
  ASSERT_TRUE(ws) << ws.error().message();
  auto msg = (*ws)->Read();
  ASSERT_TRUE(msg);
  EXPECT_EQ(*msg, "bye");
  auto end = (*ws)->Read();
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error().code(), ErrorCode::kUnavailable);
}

TEST(WebSocketTest, RefusedUpgradeCarriesApiError) {
  TestServer server(NotFound);
  auto client = MakeClient(server);
  auto ws = client->OpenWebSocket("/1.0/instances/nope/console");
  ASSERT_FALSE(ws);
  EXPECT_EQ(ws.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(ws.error().message(), "no such instance");
}

TEST(WebSocketTest, RelayStopsAtEscapeAndSendsOnlyWhatCameBefore) {
  TestServer server(NotFound);
  auto client = MakeClient(server);
  auto ws = client->OpenWebSocket("/ws/echo");
  ASSERT_TRUE(ws);
  Pipe in, out;
  auto relay = std::async(std::launch::async, [&] {
    return (*ws)->RelayInteractive(in.read.get(), out.write.get());
  });
  WriteString(in.write.get(), "ping\n");
  EXPECT_EQ(ReadUntil(out.read.get(), "ping\n"), "ping\n");
  WriteString(in.write.get(),
              "abc\x1d"
              "def");
  ASSERT_EQ(relay.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto status = relay.get();
  EXPECT_TRUE(status) << status.error().ToString();
  // The echo server saw the bytes before the escape, never those after it.
  auto seen = server.ws_messages();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "ping\n");
  EXPECT_EQ(seen[1], "abc");
  // The caller's fd keeps its blocking mode.
  EXPECT_EQ(::fcntl(in.read.get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST(WebSocketTest, RelayFinishesAfterInputEndsAndOutputSettles) {
  TestServer server(NotFound);
  auto client = MakeClient(server);
  auto ws = client->OpenWebSocket("/ws/echo");
  ASSERT_TRUE(ws);
  Pipe in, out;
  WriteString(in.write.get(), "last words");
  in.write.Reset();
  auto status = (*ws)->RelayInteractive(in.read.get(), out.write.get());
  EXPECT_TRUE(status) << status.error().ToString();
  out.write.Reset();
  EXPECT_EQ(ReadUntil(out.read.get(), "last words"), "last words");
}

TEST(WebSocketTest, RelayEndsWhenServerCloses) {
  TestServer server(NotFound);
  auto client = MakeClient(server);
  auto ws = client->OpenWebSocket("/ws/bye");
  ASSERT_TRUE(ws);
  Pipe in, out;  // input stays open: only the server can end this relay
  auto relay = std::async(std::launch::async, [&] {
    return (*ws)->RelayInteractive(in.read.get(), out.write.get());
  });
  ASSERT_EQ(relay.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto status = relay.get();
  EXPECT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(ReadUntil(out.read.get(), "bye"), "bye");
}

}  // namespace
}  // namespace vireo
