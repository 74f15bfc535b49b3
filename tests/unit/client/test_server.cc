#include "test_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdlib>
#include <filesystem>

namespace vireo::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using Socket = asio::local::stream_protocol::socket;

namespace {
std::string MakeTempDir() {
  std::string templ =
      (std::filesystem::temp_directory_path() / "vireo-client-test-XXXXXX")
          .string();
  char* dir = ::mkdtemp(templ.data());
  return dir ? std::string(dir) : std::string("/tmp");
}
}  // namespace

TestServer::TestServer(Handler handler)
    : dir_(MakeTempDir()),
      socket_path_(dir_ + "/api.sock"),
      handler_(std::move(handler)),
      acceptor_(io_, asio::local::stream_protocol::endpoint(socket_path_)) {
  thread_ = std::thread([this] {
    std::vector<std::thread> sessions;
    std::vector<int> fds;
    for (;;) {
      Socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || !acceptor_.is_open()) break;
      if (stopping_) break;  // the wake-up connection from ~TestServer
      ++accepted_;
      fds.push_back(socket.native_handle());
      sessions.emplace_back(
          [this, s = std::move(socket)]() mutable { Serve(std::move(s)); });
    }
    for (int fd : fds) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : sessions) t.join();
  });
}

TestServer::~TestServer() {
  stopping_ = true;
  {
    asio::io_context io;
    Socket wake(io);
    beast::error_code ec;
    wake.connect(asio::local::stream_protocol::endpoint(socket_path_), ec);
    thread_.join();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::vector<SeenRequest> TestServer::requests() {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<std::string> TestServer::ws_messages() {
  std::lock_guard lock(mu_);
  return ws_messages_;
}

std::string TestServer::Sync(const std::string& metadata_json,
                             int status_code) {
  return R"({"type":"sync","status":"Success","status_code":)" +
         std::to_string(status_code) + R"(,"metadata":)" + metadata_json + "}";
}

std::string TestServer::ErrorEnvelope(const std::string& message, int http,
                                      const std::string& code) {
  return R"({"type":"error","error":")" + message + R"(","error_code":)" +
         std::to_string(http) + R"(,"code":")" + code + R"("})";
}

void TestServer::Serve(Socket socket) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    SeenRequest seen{std::string(req.method_string()),
                     std::string(req.target()),
                     std::string(req[http::field::host]), req.body()};
    if (websocket::is_upgrade(req) && seen.target.starts_with("/ws/") &&
        (seen.target == "/ws/echo" || seen.target == "/ws/bye")) {
      websocket::stream<Socket> ws(std::move(socket));
      ws.accept(req, ec);
      if (ec) return;
      if (seen.target == "/ws/bye") {
        ws.text(true);
        ws.write(asio::buffer(std::string("bye")), ec);
        ws.close(websocket::close_code::normal, ec);
        return;
      }
      for (;;) {
        beast::flat_buffer msg;
        ws.read(msg, ec);
        if (ec) return;
        std::string text = beast::buffers_to_string(msg.data());
        {
          std::lock_guard lock(mu_);
          ws_messages_.push_back(text);
        }
        ws.binary(ws.got_binary());
        ws.write(asio::buffer(text), ec);
        if (ec) return;
      }
    }
    {
      std::lock_guard lock(mu_);
      requests_.push_back(seen);
    }
    CannedReply canned = handler_(seen);
    http::response<http::string_body> res(
        static_cast<http::status>(canned.status), 11);
    res.set(http::field::content_type, canned.content_type);
    res.body() = canned.body;
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::write(socket, res, ec);
    if (ec || !req.keep_alive() || drop_after_reply_) return;
  }
}

}  // namespace vireo::testing
