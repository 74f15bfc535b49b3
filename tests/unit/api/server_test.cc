#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "api_test_env.h"

namespace vireo::testing {
namespace {

void ExpectError(const Reply& r, unsigned status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  ASSERT_TRUE(r.json.is_object()) << r.body;
  EXPECT_EQ(r.json["type"], "error");
  EXPECT_EQ(r.json["error_code"], status);
  EXPECT_EQ(r.json["code"], code);
  EXPECT_FALSE(r.json["error"].get<std::string>().empty());
}

std::string ErrorText(const Reply& r) {
  return r.json.is_object() ? r.json.value("error", "") : r.body;
}

TEST_F(ApiServerTest, ServerInfoEnvelope) {
  Reply r = Unix(http::verb::get, "/1.0");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.json["type"], "sync");
  EXPECT_EQ(r.json["status"], "Success");
  EXPECT_EQ(r.json["status_code"], 200);
  const Json& m = r.json["metadata"];
  EXPECT_EQ(m["api_version"], "1.0");
  EXPECT_EQ(m["version"], "9.9.9");
  EXPECT_EQ(m["auth"], "trusted");
  EXPECT_EQ(m["environment"]["server"], "vireo");
  EXPECT_EQ(m["environment"]["accelerator"], "tcg");
}

TEST_F(ApiServerTest, UnknownRouteIs404AndWrongMethodIs405) {
  ExpectError(Unix(http::verb::get, "/1.0/nope"), 404, "not_found");
  ExpectError(Unix(http::verb::get, "/2.0"), 404, "not_found");
  Reply wrong = Unix(http::verb::delete_, "/1.0");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.json["error_code"], 405);
  EXPECT_EQ(std::string(wrong.headers[http::field::allow]), "GET");
  EXPECT_EQ(Unix(http::verb::patch, "/1.0/instances").status, 405u);
}

TEST_F(ApiServerTest, BadCreateRequestsAre400NamingTheProblem) {
  Reply malformed = Unix(http::verb::post, "/1.0/instances", "{\"name\": ");
  ExpectError(malformed, 400, "invalid_argument");
  EXPECT_NE(ErrorText(malformed).find("malformed JSON"), std::string::npos);

  Reply unknown = Unix(http::verb::post, "/1.0/instances",
                       R"({"name":"vm1","colour":"red"})");
  ExpectError(unknown, 400, "invalid_argument");
  EXPECT_NE(ErrorText(unknown).find("unknown field 'colour'"),
            std::string::npos);

  Reply negative = Unix(http::verb::post, "/1.0/instances",
                        R"({"name":"vm1","cpus":-1,"disks":[{"size":"1M"}]})");
  ExpectError(negative, 400, "invalid_argument");
  EXPECT_NE(ErrorText(negative).find("cpus"), std::string::npos);

  Reply type = Unix(http::verb::post, "/1.0/instances",
                    R"({"name":"vm1","cpus":"two"})");
  ExpectError(type, 400, "invalid_argument");
  EXPECT_NE(ErrorText(type).find("field 'cpus' must be an integer"),
            std::string::npos);
  // Nothing was created by any of these.
  EXPECT_EQ(Unix(http::verb::get, "/1.0/instances").json["metadata"],
            Json::array());
}

TEST_F(ApiServerTest, BadNamesAre400) {
  for (const std::string& name :
       {std::string(".."), std::string("a b"), std::string(64, 'a'),
        std::string("-x"), std::string("a/b")}) {
    Json body = {{"name", name}, {"disks", {{{"size", "1M"}}}}};
    ExpectError(Unix(http::verb::post, "/1.0/instances", body.dump()), 400,
                "invalid_argument");
  }
  for (const char* target :
       {"/1.0/instances/..", "/1.0/instances/a%20b", "/1.0/instances/a%2Fb",
        "/1.0/instances/%2E%2E/state"}) {
    ExpectError(Unix(http::verb::get, target), 400, "invalid_argument");
  }
  ExpectError(Unix(http::verb::get, "/1.0/instances/" + std::string(64, 'a')),
              400, "invalid_argument");
}

TEST_F(ApiServerTest, BodyOverTheLimitIs413AndTheServerCarriesOn) {
  std::string big =
      R"({"name":"vm1","cmdline":")" + std::string(kBodyLimit, 'x') + "\"}";
  ExpectError(Unix(http::verb::post, "/1.0/instances", big), 413, "too_large");
  EXPECT_EQ(Unix(http::verb::get, "/1.0").status, 200u);
}

TEST_F(ApiServerTest, MissingInstanceIs404) {
  ExpectError(Unix(http::verb::get, "/1.0/instances/ghost"), 404, "not_found");
  ExpectError(Unix(http::verb::get, "/1.0/instances/ghost/state"), 404,
              "not_found");
  ExpectError(Unix(http::verb::get, "/1.0/instances/ghost/console"), 404,
              "not_found");
  ExpectError(Unix(http::verb::delete_, "/1.0/instances/ghost"), 404,
              "not_found");
  ExpectError(Unix(http::verb::put, "/1.0/instances/ghost/state",
                   R"({"action":"start"})"),
              404, "not_found");
  ExpectError(Unix(http::verb::get, "/1.0/operations/nope"), 404, "not_found");
}

TEST_F(ApiServerTest, CreateInspectAndDeleteAnInstance) {
  Reply created = Unix(
      http::verb::post, "/1.0/instances",
      R"({"name":"vm1","cpus":1,"memory":"64M","disks":[{"size":"1M"}],"nics":0})");
  ASSERT_EQ(created.status, 202u) << created.body;
  EXPECT_EQ(created.json["type"], "async");
  EXPECT_EQ(created.json["status_code"], 100);
  const std::string op_url = created.json["operation"];
  EXPECT_EQ(op_url, "/1.0/operations/" +
                        created.json["metadata"]["id"].get<std::string>());
  EXPECT_EQ(std::string(created.headers[http::field::location]), op_url);

  Reply done = WaitOp(created.json);
  ASSERT_EQ(done.status, 200u) << done.body;
  EXPECT_EQ(done.json["metadata"]["status"], "Success") << done.body;

  Reply again = Unix(http::verb::post, "/1.0/instances",
                     R"({"name":"vm1","disks":[{"size":"1M"}]})");
  EXPECT_EQ(again.status, 409u) << again.body;

  Reply inst = Unix(http::verb::get, "/1.0/instances/vm1");
  ASSERT_EQ(inst.status, 200u) << inst.body;
  const Json& m = inst.json["metadata"];
  EXPECT_EQ(m["name"], "vm1");
  EXPECT_EQ(m["state"], "stopped");
  EXPECT_EQ(m["cpus"], 1);
  EXPECT_EQ(m["memory"], 64u << 20);
  EXPECT_EQ(m["config"]["disks"].size(), 1u);

  EXPECT_EQ(Unix(http::verb::get, "/1.0/instances").json["metadata"],
            Json::array({"/1.0/instances/vm1"}));
  Reply full = Unix(http::verb::get, "/1.0/instances?recursion=1");
  ASSERT_EQ(full.json["metadata"].size(), 1u);
  EXPECT_EQ(full.json["metadata"][0]["name"], "vm1");
  EXPECT_EQ(Unix(http::verb::get, "/1.0/instances/vm1/state")
                .json["metadata"]["state"],
            "stopped");

  // Never ran: the console log is empty, and there is nothing to attach to.
  Reply log = Unix(http::verb::get, "/1.0/instances/vm1/console?tail=100");
  EXPECT_EQ(log.status, 200u);
  EXPECT_EQ(log.content_type.rfind("text/plain", 0), 0u);
  EXPECT_EQ(log.body, "");
  ExpectError(Unix(http::verb::put, "/1.0/instances/vm1/state",
                   R"({"action":"stop","x":1})"),
              400, "invalid_argument");

  Reply ops = Unix(http::verb::get, "/1.0/operations");
  ASSERT_TRUE(ops.json["metadata"].is_array());
  EXPECT_GE(ops.json["metadata"].size(), 1u);

  Reply deleted = Unix(http::verb::delete_, "/1.0/instances/vm1");
  ASSERT_EQ(deleted.status, 202u) << deleted.body;
  EXPECT_EQ(WaitOp(deleted.json).json["metadata"]["status"], "Success");
  ExpectError(Unix(http::verb::get, "/1.0/instances/vm1"), 404, "not_found");
}

TEST_F(ApiServerTest, ConsoleWebSocketOnStoppedInstanceIs409) {
  Reply created = Unix(http::verb::post, "/1.0/instances",
                       R"({"name":"vm2","disks":[{"size":"1M"}]})");
  ASSERT_EQ(created.status, 202u) << created.body;
  ASSERT_EQ(WaitOp(created.json).json["metadata"]["status"], "Success");

  net::io_context ioc;
  websocket::stream<net::local::stream_protocol::socket> ws(ioc);
  ws.next_layer().connect(net::local::stream_protocol::endpoint(socket_path_));
  websocket::response_type res;
  beast::error_code ec;
  ws.handshake(res, "localhost", "/1.0/instances/vm2/console", ec);
  EXPECT_TRUE(ec);
  EXPECT_EQ(res.result_int(), 409u);
}

TEST_F(ApiServerTest, HttpsNeedsAValidBearerToken) {
  Reply none = Https(http::verb::get, "/1.0/resources", "");
  ExpectError(none, 401, "unauthenticated");
  EXPECT_NE(ErrorText(none).find("missing"), std::string::npos);
  EXPECT_EQ(std::string(none.headers[http::field::www_authenticate]), "Bearer");

  Reply basic = Https(http::verb::get, "/1.0/resources", "Basic dXNlcjpwYXNz");
  ExpectError(basic, 401, "unauthenticated");

  Reply bad = Https(http::verb::get, "/1.0/resources",
                    "Bearer " + std::string(64, 'a'));
  ExpectError(bad, 401, "unauthenticated");
  EXPECT_NE(ErrorText(bad).find("invalid"), std::string::npos);

  auto token = tokens_->Create("test");
  ASSERT_TRUE(token);
  Reply ok = Https(http::verb::get, "/1.0", "Bearer " + token->secret);
  ASSERT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(ok.json["metadata"]["api_version"], "1.0");
  EXPECT_TRUE(ok.json["metadata"].contains("environment"));
  EXPECT_GT(server_->https_port(), 0);

  // GET /1.0 answers without credentials, but says nothing about the host.
  Reply anonymous = Https(http::verb::get, "/1.0", "");
  ASSERT_EQ(anonymous.status, 200u) << anonymous.body;
  EXPECT_EQ(anonymous.json["metadata"]["auth"], "untrusted");
  EXPECT_FALSE(anonymous.json["metadata"].contains("environment"));
}

TEST_F(ApiServerTest, TokensCanBeManagedThroughTheApi) {
  Reply created = Unix(http::verb::post, "/1.0/tokens", R"({"name":"ci"})");
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string secret = created.json["metadata"]["secret"];
  EXPECT_EQ(created.json["metadata"]["name"], "ci");
  ExpectError(Unix(http::verb::post, "/1.0/tokens", R"({"name":"ci","x":1})"),
              400, "invalid_argument");

  Reply listed = Unix(http::verb::get, "/1.0/tokens");
  ASSERT_EQ(listed.json["metadata"].size(), 1u);
  EXPECT_EQ(listed.json["metadata"][0]["name"], "ci");
  EXPECT_FALSE(listed.json["metadata"][0].contains("secret"));

  EXPECT_EQ(Https(http::verb::get, "/1.0/instances", "Bearer " + secret).status,
            200u);
  EXPECT_EQ(Unix(http::verb::delete_, "/1.0/tokens/ci").status, 200u);
  ExpectError(Https(http::verb::get, "/1.0/instances", "Bearer " + secret), 401,
              "unauthenticated");
  ExpectError(Unix(http::verb::delete_, "/1.0/tokens/ci"), 404, "not_found");
}

TEST_F(ApiServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  net::io_context ioc;
  net::local::stream_protocol::socket sock(ioc);
  sock.connect(net::local::stream_protocol::endpoint(socket_path_));
  for (int i = 0; i < 3; ++i) {
    Reply r = Exchange(sock, http::verb::get, "/1.0", "", {});
    EXPECT_EQ(r.status, 200u);
  }
  EXPECT_EQ(Exchange(sock, http::verb::get, "/1.0/nope", "", {}).status, 404u);
}

TEST_F(ApiServerTest, GarbageGets400AndTheServerSurvives) {
  net::io_context ioc;
  net::local::stream_protocol::socket sock(ioc);
  sock.connect(net::local::stream_protocol::endpoint(socket_path_));
  const std::string junk = "THIS IS NOT HTTP\r\n\r\n";
  net::write(sock, net::buffer(junk));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(sock, buffer, res);
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(Unix(http::verb::get, "/1.0").status, 200u);
}

TEST_F(ApiServerTest, ExpectContinueIsAnswered) {
  net::io_context ioc;
  net::local::stream_protocol::socket sock(ioc);
  sock.connect(net::local::stream_protocol::endpoint(socket_path_));
  const std::string body = R"({"name":"ci2"})";
  const std::string head =
      "POST /1.0/tokens HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  net::write(sock, net::buffer(head));
  // The interim response comes before we send the body.
  beast::flat_buffer buffer;
  http::response<http::empty_body> cont;
  http::read(sock, buffer, cont);
  EXPECT_EQ(cont.result_int(), 100u);
  net::write(sock, net::buffer(body));
  http::response<http::string_body> res;
  http::read(sock, buffer, res);
  EXPECT_EQ(res.result_int(), 201u) << res.body();
}

TEST_F(ApiServerTest, EventsWebSocketDeliversPublishedEvents) {
  net::io_context ioc;
  websocket::stream<net::local::stream_protocol::socket> ws(ioc);
  ws.next_layer().connect(net::local::stream_protocol::endpoint(socket_path_));
  ws.handshake("localhost", "/1.0/events");
  events_.Lifecycle("instance-started", "vm9");
  beast::flat_buffer buffer;
  ws.read(buffer);
  EXPECT_TRUE(ws.got_text());
  Json event = Json::parse(beast::buffers_to_string(buffer.data()));
  EXPECT_EQ(event["type"], "lifecycle");
  EXPECT_EQ(event["metadata"]["action"], "instance-started");
  ws.close(websocket::close_code::normal);

  // Plain GET without the upgrade is refused.
  ExpectError(Unix(http::verb::get, "/1.0/events"), 400, "invalid_argument");
}

TEST_F(ApiServerTest, EventsOverHttpsToo) {
  auto token = tokens_->Create("ws");
  ASSERT_TRUE(token);
  net::io_context ioc;
  auto tls = ClientTls();
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ioc, *tls);
  beast::get_lowest_layer(ws).connect(net::ip::tcp::endpoint(
      net::ip::make_address("127.0.0.1"), server_->https_port()));
  ws.next_layer().set_verify_callback(ssl::host_name_verification("localhost"));
  ws.next_layer().handshake(ssl::stream_base::client);
  ws.set_option(
      websocket::stream_base::decorator([&](websocket::request_type& req) {
        req.set(http::field::authorization, "Bearer " + token->secret);
      }));
  ws.handshake("localhost", "/1.0/events");
  events_.Publish("operation", {{"id", "x"}});
  beast::flat_buffer buffer;
  ws.read(buffer);
  Json event = Json::parse(beast::buffers_to_string(buffer.data()));
  EXPECT_EQ(event["type"], "operation");
}

// The local socket trusts root only: any other uid gets 403 for everything.
TEST_F(ApiServerTest, NonRootOnTheLocalSocketIs403) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another uid";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
  // Let uid 65534 reach and connect to the socket at all.
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(socket_path_.c_str(), 0666), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Only raw system calls in the child of a multi-threaded parent.
    if (::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0)
      _exit(2);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      _exit(3);
    const char req[] =
        "GET /1.0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (::write(fd, req, sizeof(req) - 1) !=
        static_cast<ssize_t>(sizeof(req) - 1))
      _exit(4);
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(buf) - 1 &&
           (n = ::read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) {
      got += static_cast<size_t>(n);
    }
    buf[got] = '\0';
    if (std::strncmp(buf, "HTTP/1.1 403", 12) != 0) _exit(5);
    if (std::strstr(buf, "only root may use the local socket") == nullptr)
      _exit(6);
    if (std::strstr(buf, "permission_denied") == nullptr) _exit(7);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(ApiServerTest, StopEndsIdleAndWebSocketConnections) {
  net::io_context ioc;
  net::local::stream_protocol::socket idle(ioc);
  idle.connect(net::local::stream_protocol::endpoint(socket_path_));
  websocket::stream<net::local::stream_protocol::socket> ws(ioc);
  ws.next_layer().connect(net::local::stream_protocol::endpoint(socket_path_));
  ws.handshake("localhost", "/1.0/events");

  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  beast::flat_buffer buffer;
  beast::error_code ec;
  ws.read(buffer, ec);
  EXPECT_TRUE(ec);
  char c;
  EXPECT_EQ(::read(idle.native_handle(), &c, 1), 0);
  EXPECT_FALSE(std::filesystem::exists(socket_path_));
}

TEST_F(ApiServerTest, WaitHonoursTimeoutQuery) {
  ExpectError(Unix(http::verb::get, "/1.0/operations/x/wait?timeout=-1"), 400,
              "invalid_argument");
  ExpectError(Unix(http::verb::get, "/1.0/instances?recursion=abc"), 400,
              "invalid_argument");
}

}  // namespace
}  // namespace vireo::testing
