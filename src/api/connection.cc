#include "api/connection.h"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include "api/http_session.h"
#include "api/ws_sessions.h"

namespace vireo {

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using http_session::HttpRequest;
using UnixStream = beast::basic_stream<net::local::stream_protocol>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr std::chrono::seconds kTlsHandshakeTimeout{30};
constexpr std::chrono::minutes kWsIdleTimeout{5};
constexpr size_t kWsMessageMax = 1 << 20;

// Releases a console claimed by the handler when the session ends, however
// it ends.
class ConsoleClaimGuard {
 public:
  ConsoleClaimGuard(HandlerContext* ctx, std::string name)
      : ctx_(ctx), name_(std::move(name)) {}
  ~ConsoleClaimGuard() {
    if (!name_.empty()) ctx_->consoles.Release(name_);
  }
  ConsoleClaimGuard(const ConsoleClaimGuard&) = delete;
  ConsoleClaimGuard& operator=(const ConsoleClaimGuard&) = delete;

 private:
  HandlerContext* ctx_;
  std::string name_;
};

// Tells the console ticket behind a relay that the relay ended, however it
// ends, so that its operation finishes.
class RelayTicketGuard {
 public:
  RelayTicketGuard(ConsoleTickets* tickets, std::string key)
      : tickets_(tickets), key_(std::move(key)) {}
  ~RelayTicketGuard() {
    if (tickets_ != nullptr && !key_.empty()) tickets_->Finish(key_, error_);
  }
  RelayTicketGuard(const RelayTicketGuard&) = delete;
  RelayTicketGuard& operator=(const RelayTicketGuard&) = delete;
  void Fail(std::string error) { error_ = std::move(error); }

 private:
  ConsoleTickets* tickets_;
  std::string key_;
  std::string error_;
};

// True if the client offered the WebSocket subprotocol "binary" (noVNC
// does); it must then be echoed back or browsers drop the connection.
bool OffersBinary(const HttpRequest& req) {
  std::string_view offered = req[http::field::sec_websocket_protocol];
  while (!offered.empty()) {
    size_t comma = offered.find(',');
    std::string_view item = offered.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == "binary") return true;
    if (comma == std::string_view::npos) break;
    offered.remove_prefix(comma + 1);
  }
  return false;
}

// Runs the WebSocket session a handler accepted. Takes the stream over.
template <class Stream>
void RunUpgrade(net::io_context& ioc, Stream stream, http_session::Upgrade up,
                const ConnectionEnv& env) {
  HandlerContext* ctx = env.ctx;
  const bool relay = up.response.upgrade == ApiResponse::Upgrade::kRelay;
  const bool console =
      relay || up.response.upgrade == ApiResponse::Upgrade::kConsole;
  ConsoleClaimGuard claim(
      ctx, console ? up.response.console_instance : std::string());
  RelayTicketGuard ticket(relay ? ctx->services.console_tickets : nullptr,
                          up.response.relay_ticket);

  net::local::stream_protocol::socket serial(ioc);
  std::shared_ptr<EventSubscription> subscription;
  if (console) {
    beast::error_code ec;
    serial.connect(
        net::local::stream_protocol::endpoint(up.response.console_socket), ec);
    if (ec) {
      ticket.Fail("console socket not reachable: " + ec.message());
      ApiResponse refused =
          ErrorResponse(Error(ErrorCode::kUnavailable,
                              "the console is not reachable: " + ec.message()));
      (void)http_session::WriteResponse(ioc, stream, std::move(refused),
                                        up.request.version(), false);
      return;
    }
  } else {
    // Subscribe before the handshake so no event published after the client
    // sees "101 Switching Protocols" is missed.
    subscription = ctx->services.events->Subscribe();
  }

  websocket::stream<Stream> ws(std::move(stream));
  beast::get_lowest_layer(ws)
      .expires_never();  // the WebSocket keeps its own timers
  websocket::stream_base::timeout timeouts =
      websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.idle_timeout = kWsIdleTimeout;
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.read_message_max(kWsMessageMax);
  if (relay && OffersBinary(up.request)) {
    ws.set_option(
        websocket::stream_base::decorator([](websocket::response_type& res) {
          res.set(http::field::sec_websocket_protocol, "binary");
        }));
  }
  auto ec = RunAsync(ioc, [&](auto handler) {
    ws.async_accept(up.request, std::move(handler));
  });
  if (ec) {
    LOG_DEBUG("websocket handshake failed: {}", ec.message());
    ticket.Fail("websocket handshake failed: " + ec.message());
    return;
  }
  if (console) {
    ws_session::RunConsole(ioc, ws, serial, ctx);
  } else {
    ws_session::RunEvents(ioc, ws, std::move(subscription), ctx);
  }
}

void LogEscaped(const char* where, const std::exception& e) {
  LOG_WARN("{}: connection ended by exception: {}", where, e.what());
}

}  // namespace

namespace http_session {

ApiResponse HandleRequest(const HttpRequest& req,
                          const Authenticate& authenticate,
                          const ConnectionEnv& env) {
  try {
    auto identity = authenticate(req);
    if (!identity) {
      ApiResponse denied = ErrorResponse(identity.error());
      if (identity.error().code() == ErrorCode::kUnauthenticated) {
        denied.headers["WWW-Authenticate"] = "Bearer";
      }
      return denied;
    }
    ApiRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    if (auto parsed = ParseTarget(req.target(), &request.path, &request.query);
        !parsed) {
      return ErrorResponse(parsed.error());
    }
    request.body = req.body();
    request.websocket_upgrade = websocket::is_upgrade(req);
    request.identity = std::move(*identity);
    return env.router->Dispatch(request);
  } catch (const std::exception& e) {
    LOG_ERROR("{} {}: handler threw: {}", std::string(req.method_string()),
              std::string(req.target()), e.what());
    return ErrorResponse(500, "internal",
                         std::string("internal error: ") + e.what());
  }
}

}  // namespace http_session

void ServeUnixConnection(UniqueFd fd, const ConnectionEnv& env) {
  try {
    struct ucred cred {};
    socklen_t len = sizeof(cred);
    bool root =
        ::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
        len == sizeof(cred) && cred.uid == 0;
    net::io_context ioc(1);
    UnixStream stream(ioc);
    stream.socket().assign(net::local::stream_protocol(), fd.Release());
    http_session::Authenticate authenticate =
        [root](const HttpRequest&) -> Result<std::string> {
      if (!root) {
        return Err(ErrorCode::kPermissionDenied,
                   "only root may use the local socket");
      }
      return std::string("root");
    };
    auto up = http_session::ServeRequests(ioc, stream, authenticate, env);
    if (up) RunUpgrade(ioc, std::move(stream), std::move(*up), env);
  } catch (const std::exception& e) {
    LogEscaped("unix", e);
  } catch (...) {
    LOG_WARN("unix: connection ended by unknown exception");
  }
}

void ServeTlsConnection(UniqueFd fd, ssl::context& tls,
                        const ConnectionEnv& env) {
  try {
    sockaddr_storage addr{};
    socklen_t addr_len = sizeof(addr);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr),
                      &addr_len) != 0)
      return;
    net::io_context ioc(1);
    beast::tcp_stream tcp(ioc);
    tcp.socket().assign(
        addr.ss_family == AF_INET6 ? net::ip::tcp::v6() : net::ip::tcp::v4(),
        fd.Release());
    tcp.socket().set_option(net::ip::tcp::no_delay(true));
    TlsStream stream(std::move(tcp), tls);
    beast::get_lowest_layer(stream).expires_after(kTlsHandshakeTimeout);
    auto ec = RunAsync(ioc, [&](auto handler) {
      stream.async_handshake(ssl::stream_base::server, std::move(handler));
    });
    if (ec) {
      LOG_DEBUG("TLS handshake failed: {}", ec.message());
      return;
    }
    TokenService* tokens = env.ctx->services.tokens;
    http_session::Authenticate authenticate =
        [tokens](const HttpRequest& req) -> Result<std::string> {
      // Its one-time secret authenticates the console WebSocket.
      if (IsConsoleWebsocketPath(req.target())) return std::string("console");
      auto it = req.find(http::field::authorization);
      if (it == req.end()) {
        return Err(ErrorCode::kUnauthenticated,
                   "missing credentials: send 'Authorization: Bearer <token>'");
      }
      std::string_view value = it->value();
      constexpr std::string_view kScheme = "Bearer ";
      if (value.size() <= kScheme.size() ||
          !beast::iequals(value.substr(0, kScheme.size()), kScheme)) {
        return Err(
            ErrorCode::kUnauthenticated,
            "unsupported Authorization header: expected 'Bearer <token>'");
      }
      if (tokens == nullptr) {
        return Err(ErrorCode::kUnauthenticated,
                   "token authentication is not configured");
      }
      std::string_view secret = value.substr(kScheme.size());
      while (!secret.empty() && secret.front() == ' ') secret.remove_prefix(1);
      while (!secret.empty() && secret.back() == ' ') secret.remove_suffix(1);
      ASSIGN_OR_RETURN(ApiToken token, tokens->Authenticate(secret));
      return "token:" + token.name;
    };
    auto up = http_session::ServeRequests(ioc, stream, authenticate, env);
    if (up) {
      RunUpgrade(ioc, std::move(stream), std::move(*up), env);
      return;
    }
    // A polite close_notify, bounded in time; the peer may be gone already.
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    (void)RunAsync(
        ioc, [&](auto handler) { stream.async_shutdown(std::move(handler)); });
  } catch (const std::exception& e) {
    LogEscaped("https", e);
  } catch (...) {
    LOG_WARN("https: connection ended by unknown exception");
  }
}

}  // namespace vireo
