#pragma once

// A tiny Beast HTTP + WebSocket server on a temporary unix socket, returning
// canned replies, for testing the client without a daemon.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vireo::testing {

struct CannedReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

struct SeenRequest {
  std::string method;
  std::string target;
  std::string host;
  std::string body;
};

class TestServer {
 public:
  using Handler = std::function<CannedReply(const SeenRequest&)>;

  // WebSocket routes: /ws/echo echoes each message (and records it),
  // /ws/bye sends "bye" and closes. Other upgrade targets get a 404 envelope.
  explicit TestServer(Handler handler);
  ~TestServer();

  const std::string& socket_path() const { return socket_path_; }
  int accepted() const { return accepted_.load(); }
  std::vector<SeenRequest> requests();
  std::vector<std::string> ws_messages();
  // After each reply, close the connection although it was kept alive, as a
  // server with a short idle timeout would.
  void set_drop_after_reply(bool drop) { drop_after_reply_ = drop; }

  static std::string Sync(const std::string& metadata_json,
                          int status_code = 200);
  static std::string ErrorEnvelope(const std::string& message, int http,
                                   const std::string& code);

 private:
  void Serve(boost::asio::local::stream_protocol::socket socket);
  std::string dir_;
  std::string socket_path_;
  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::atomic<int> accepted_{0};
  std::atomic<bool> drop_after_reply_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<SeenRequest> requests_;
  std::vector<std::string> ws_messages_;
  std::thread thread_;
};

}  // namespace vireo::testing
