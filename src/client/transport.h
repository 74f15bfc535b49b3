#pragma once

// Internal to the client library: connection plumbing shared by the HTTP
// client and the WebSocket. Not for use outside src/client.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo {
class WebSocket;
}

namespace vireo::client_detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

using UnixSocket = asio::local::stream_protocol::socket;
using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;
using Clock = std::chrono::steady_clock;

struct HttpsTarget {
  std::string host;
  std::string port;
};

// Where and how to connect; shared by the HTTP client and WebSockets.
struct ConnectionSpec {
  std::string unix_socket;                  // used when https is empty
  std::optional<HttpsTarget> https;         // set for https:// endpoints
  std::string token;                        // bearer token (HTTPS only)
  std::shared_ptr<asio::ssl::context> tls;  // set when https is set

  std::string HostHeader() const;
  std::string Describe() const;  // "unix:/run/..." or "https://host:port"
};

// Accepts "https://host:port", "https://host" (port 8443) and "host:port".
Result<HttpsTarget> ParseHttpsUrl(std::string_view url);
// A TLS client context. The daemon's certificate is self-signed and not
// pinned anywhere yet, so the peer is NOT verified: the bearer token is the
// authentication, TLS only protects it from passive sniffing.
Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext();

// Maps a transport error to a vireo Error ("connect unix:/x: ...").
Error FromBeast(const beast::error_code& ec, std::string_view what);
// True for errors that mean "the peer closed the connection".
bool IsDisconnect(const beast::error_code& ec);

// Runs io until all work is done or the deadline passes. On deadline calls
// on_timeout (which must cancel or close the I/O objects), drains the handlers
// and returns false.
bool RunUntil(asio::io_context& io, Clock::time_point deadline,
              const std::function<void()>& on_timeout);

asio::awaitable<beast::error_code> ConnectUnix(UnixSocket& socket,
                                               std::string path);
asio::awaitable<beast::error_code> ConnectTls(TlsStream& stream,
                                              HttpsTarget target);

// Connects and performs the WebSocket handshake for target (websocket.cc).
Result<std::unique_ptr<WebSocket>> OpenWebSocket(const ConnectionSpec& spec,
                                                 std::string_view target,
                                                 Clock::duration timeout);

// Completion handler for co_spawn that keeps an escaping exception.
struct ExceptionSink {
  std::exception_ptr* out;
  void operator()(std::exception_ptr e) const {
    if (e) *out = e;
  }
};
// Turns a caught exception into kInternal with its what().
Error FromException(const std::exception_ptr& e, std::string_view what);

}  // namespace vireo::client_detail
