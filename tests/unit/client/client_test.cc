#include "client/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "client/transport.h"
#include "test_server.h"

namespace vireo {
namespace {

using testing::CannedReply;
using testing::SeenRequest;
using testing::TestServer;

constexpr const char* kAsyncCreate =
    R"({"type":"async","status":"Operation created","status_code":100,)"
    R"("operation":"/1.0/operations/op1","metadata":{"id":"op1","status":"Running"}})";

std::unique_ptr<ApiClient> MakeClient(const TestServer& server) {
  auto client = ApiClient::Create(Endpoint{server.socket_path(), "", ""});
  EXPECT_TRUE(client.has_value());
  return std::move(*client);
}

CannedReply Routes(const SeenRequest& req) {
  if (req.target == "/1.0")
    return {200, TestServer::Sync(R"({"api_version":"1.0"})")};
  if (req.target == "/1.0/instances/missing") {
    return {404, TestServer::ErrorEnvelope("instance \\\"missing\\\" not found",
                                           404, "not_found")};
  }
  if (req.target == "/1.0/weird") {
    return {409,
            TestServer::ErrorEnvelope("state conflict", 409, "no_such_code")};
  }
  if (req.target == "/1.0/plain") return {500, "kaboom", "text/plain"};
  if (req.target == "/1.0/instances" && req.method == "POST")
    return {202, kAsyncCreate};
  return {404, TestServer::ErrorEnvelope("not found", 404, "not_found")};
}

TEST(ApiClientTest, SyncCallReturnsMetadataAndSendsRequest) {
  TestServer server(Routes);
  auto client = MakeClient(server);
  auto r = client->Call("GET", "/1.0");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)["api_version"], "1.0");
  auto post = client->Call("POST", "/1.0/instances", Json{{"name", "vm1"}});
  ASSERT_TRUE(post) << post.error().message();
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].host, "vireo");
  EXPECT_EQ(seen[1].method, "POST");
  EXPECT_EQ(Json::parse(seen[1].body), Json({{"name", "vm1"}}));
}

TEST(ApiClientTest, ErrorEnvelopeMapsCodeAndMessage) {
  TestServer server(Routes);
  auto client = MakeClient(server);
  auto r = client->Call("GET", "/1.0/instances/missing");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message(), "instance \"missing\" not found");
  // Unknown code names fall back to the HTTP status.
  auto weird = client->Call("GET", "/1.0/weird");
  ASSERT_FALSE(weird);
  EXPECT_EQ(weird.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(weird.error().message(), "state conflict");
  auto plain = client->Call("GET", "/1.0/plain");
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code(), ErrorCode::kInternal);
  EXPECT_NE(plain.error().message().find("HTTP 500: kaboom"),
            std::string::npos);
}

TEST(ApiClientTest, AsyncCallReturnsEnvelope) {
  TestServer server(Routes);
  auto client = MakeClient(server);
  auto r = client->Call("POST", "/1.0/instances", Json::object());
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["operation"], "/1.0/operations/op1");
  EXPECT_EQ((*r)["metadata"]["status"], "Running");
}

TEST(ApiClientTest, CallAndWaitPollsUntilSuccess) {
  std::atomic<int> waits{0};
  TestServer server([&](const SeenRequest& req) -> CannedReply {
    if (req.target.starts_with("/1.0/operations/op1/wait?timeout=")) {
      if (++waits < 3)
        return {200, TestServer::Sync(R"({"id":"op1","status":"Running"})")};
      return {
          200,
          TestServer::Sync(
              R"({"id":"op1","status":"Success","metadata":{"created":"vm1"}})")};
    }
    return Routes(req);
  });
  auto client = MakeClient(server);
  auto r = client->CallAndWait("POST", "/1.0/instances", Json::object());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, Json({{"created", "vm1"}}));
  EXPECT_EQ(waits.load(), 3);
  // Sync replies pass straight through.
  auto sync = client->CallAndWait("GET", "/1.0");
  ASSERT_TRUE(sync);
  EXPECT_EQ((*sync)["api_version"], "1.0");
}

TEST(ApiClientTest, CallAndWaitReportsOperationFailure) {
  TestServer server([](const SeenRequest& req) -> CannedReply {
    if (req.target.starts_with("/1.0/operations/op1/wait")) {
      return {200,
              TestServer::Sync(
                  R"({"id":"op1","status":"Failure","status_code":400,)"
                  R"("err":"not enough memory","code":"resource_exhausted"})")};
    }
    return Routes(req);
  });
  auto client = MakeClient(server);
  auto r = client->CallAndWait("POST", "/1.0/instances", Json::object());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(r.error().message(), "not enough memory");
}

TEST(ApiClientTest, CallAndWaitTimesOut) {
  TestServer server([](const SeenRequest& req) -> CannedReply {
    if (req.target.starts_with("/1.0/operations/op1/wait")) {
      EXPECT_EQ(req.target, "/1.0/operations/op1/wait?timeout=1");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      return {200, TestServer::Sync(R"({"id":"op1","status":"Running"})")};
    }
    return Routes(req);
  });
  auto client = MakeClient(server);
  auto start = std::chrono::steady_clock::now();
  auto r = client->CallAndWait("POST", "/1.0/instances", Json::object(),
                               std::chrono::seconds(1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ApiClientTest, KeepAliveReusesOneConnection) {
  TestServer server(Routes);
  auto client = MakeClient(server);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client->Call("GET", "/1.0"));
  EXPECT_EQ(server.accepted(), 1);
}

TEST(ApiClientTest, ReconnectsOnceWhenServerClosedIdleConnection) {
  TestServer server(Routes);
  server.set_drop_after_reply(true);
  auto client = MakeClient(server);
  for (int i = 0; i < 3; ++i) {
    // Let the server's close reach us so the next request hits a dead socket.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto r = client->Call("GET", "/1.0");
    ASSERT_TRUE(r) << "request " << i << ": " << r.error().message();
  }
  EXPECT_EQ(server.accepted(), 3);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(ApiClientTest, NoServerIsUnavailable) {
  auto client = ApiClient::Create(Endpoint{"/nonexistent/vireo.sock", "", ""});
  ASSERT_TRUE(client);
  auto r = (*client)->Call("GET", "/1.0");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("/nonexistent/vireo.sock"),
            std::string::npos);
}

TEST(ApiClientTest, SlowServerTimesOut) {
  TestServer server([](const SeenRequest&) -> CannedReply {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    return {200, TestServer::Sync("{}")};
  });
  auto client = MakeClient(server);
  client->set_request_timeout(std::chrono::seconds(1));
  auto r = client->Call("GET", "/1.0");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
}

TEST(ApiClientTest, CreateRejectsBadEndpoints) {
  EXPECT_FALSE(ApiClient::Create(Endpoint{}));
  EXPECT_FALSE(ApiClient::Create(Endpoint{"", "http://host:1", ""}));
  EXPECT_TRUE(ApiClient::Create(Endpoint{"", "https://127.0.0.1:8443", "tok"}));
}

TEST(DecodeReplyTest, Envelopes) {
  auto sync = DecodeReply({200, "application/json", TestServer::Sync("[1,2]")});
  ASSERT_TRUE(sync);
  EXPECT_EQ(*sync, Json({1, 2}));
  auto err = DecodeReply(
      {403, "application/json",
       TestServer::ErrorEnvelope("nope", 403, "permission_denied")});
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_FALSE(DecodeReply({200, "application/json", "not json"}));
  EXPECT_FALSE(DecodeReply({200, "application/json", R"({"type":"other"})"}));
}

TEST(ErrorCodeFromNameTest, RoundTripsEveryCode) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    auto code = static_cast<ErrorCode>(i);
    auto back = ErrorCodeFromName(ErrorCodeName(code));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, code);
  }
  EXPECT_FALSE(ErrorCodeFromName("bogus"));
}

TEST(UrlEscapeTest, EscapesReservedCharacters) {
  EXPECT_EQ(UrlEscape("vm-1_a.b~"), "vm-1_a.b~");
  EXPECT_EQ(UrlEscape("a/b c?d"), "a%2Fb%20c%3Fd");
}

TEST(ParseHttpsUrlTest, Forms) {
  auto a = client_detail::ParseHttpsUrl("https://example.com:9443");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "example.com");
  EXPECT_EQ(a->port, "9443");
  auto b = client_detail::ParseHttpsUrl("https://[::1]/");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, "8443");
  auto c = client_detail::ParseHttpsUrl("127.0.0.1:1234");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_FALSE(client_detail::ParseHttpsUrl("https://host:12ab"));
  EXPECT_FALSE(client_detail::ParseHttpsUrl("https://host/path"));
  EXPECT_FALSE(client_detail::ParseHttpsUrl("https://:80"));
}

}  // namespace
}  // namespace vireo
