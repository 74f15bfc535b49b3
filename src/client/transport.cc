#include "client/transport.h"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>

namespace vireo::client_detail {

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}

std::string ConnectionSpec::HostHeader() const {
  return https ? https->host : "vireo";
}

std::string ConnectionSpec::Describe() const {
  if (https) return "https://" + https->host + ":" + https->port;
  return "unix:" + unix_socket;
}

Result<HttpsTarget> ParseHttpsUrl(std::string_view url) {
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else if (rest.find("://") != std::string_view::npos) {
    return Err(ErrorCode::kInvalidArgument,
               "remote URL must use https://: " + std::string(url));
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return Err(ErrorCode::kInvalidArgument,
                 "remote URL must not have a path: " + std::string(url));
    }
    rest = rest.substr(0, slash);
  }
  HttpsTarget target;
  if (rest.starts_with("[")) {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return Err(ErrorCode::kInvalidArgument,
                 "bad IPv6 address in URL: " + std::string(url));
    }
    target.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (rest.starts_with(":")) target.port = std::string(rest.substr(1));
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    target.host = std::string(rest.substr(0, colon));
    target.port = std::string(rest.substr(colon + 1));
  } else {
    target.host = std::string(rest);
  }
  if (target.port.empty()) target.port = "8443";
  if (target.host.empty())
    return Err(ErrorCode::kInvalidArgument,
               "no host in URL: " + std::string(url));
  for (char c : target.port) {
    if (c < '0' || c > '9')
      return Err(ErrorCode::kInvalidArgument,
                 "bad port in URL: " + std::string(url));
  }
  return target;
}

Result<std::shared_ptr<asio::ssl::context>> MakeTlsContext() {
  try {
    auto ctx =
        std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds |
                     asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3);
    // See the header: self-signed daemon certificate, deliberately unverified.
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal, std::string("TLS context: ") + e.what());
  }
}

bool IsDisconnect(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted ||
         ec == asio::error::not_connected ||
         ec == asio::ssl::error::stream_truncated ||
         ec == beast::http::error::end_of_stream ||
         ec == beast::websocket::error::closed;
}

Error FromBeast(const beast::error_code& ec, std::string_view what) {
  ErrorCode code = ErrorCode::kIo;
  if (ec == asio::error::connection_refused || ec == asio::error::not_found ||
      ec == asio::error::host_not_found ||
      ec == asio::error::host_unreachable ||
      ec == asio::error::network_unreachable || IsDisconnect(ec) ||
      ec == beast::errc::no_such_file_or_directory) {
    code = ErrorCode::kUnavailable;
  } else if (ec == asio::error::timed_out) {
    code = ErrorCode::kTimeout;
  } else if (ec == beast::errc::permission_denied) {
    code = ErrorCode::kPermissionDenied;
  }
  return Error(code, std::string(what) + ": " + ec.message());
}

Error FromException(const std::exception_ptr& e, std::string_view what) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return Error(ErrorCode::kInternal, std::string(what) + ": " + ex.what());
  } catch (...) {
    return Error(ErrorCode::kInternal,
                 std::string(what) + ": unknown exception");
  }
}

bool RunUntil(asio::io_context& io, Clock::time_point deadline,
              const std::function<void()>& on_timeout) {
  io.restart();
  io.run_until(deadline);
  if (io.stopped()) return true;
  on_timeout();
  io.run();  // lets the aborted handlers finish
  return false;
}

asio::awaitable<beast::error_code> ConnectUnix(UnixSocket& socket,
                                               std::string path) {
  auto [ec] = co_await socket.async_connect(
      asio::local::stream_protocol::endpoint(path), kTuple);
  co_return ec;
}

asio::awaitable<beast::error_code> ConnectTls(TlsStream& stream,
                                              HttpsTarget target) {
  asio::ip::tcp::resolver resolver(stream.get_executor());
  auto [rec, results] =
      co_await resolver.async_resolve(target.host, target.port, kTuple);
  if (rec) co_return rec;
  auto [cec, ep] =
      co_await asio::async_connect(stream.next_layer(), results, kTuple);
  if (cec) co_return cec;
  // SNI, for servers behind a name-based proxy; harmless otherwise.
  beast::error_code addr_ec;
  asio::ip::make_address(target.host, addr_ec);
  if (addr_ec &&
      !SSL_set_tlsext_host_name(stream.native_handle(), target.host.c_str())) {
    co_return beast::error_code(static_cast<int>(::ERR_get_error()),
                                asio::error::get_ssl_category());
  }
  auto [hec] =
      co_await stream.async_handshake(asio::ssl::stream_base::client, kTuple);
  co_return hec;
}

}  // namespace vireo::client_detail
