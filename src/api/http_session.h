#pragma once

// HTTP/1.1 request loop shared by the unix and TLS listeners. Header-only
// because it is a template over the stream type; used by connection.cc only.

#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "api/connection.h"
#include "api/io_util.h"
#include "api/responses.h"
#include "common/log.h"

namespace vireo {

namespace http_session {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;

using HttpRequest = http::request<http::string_body>;

// Idle keep-alive connections are closed after this long.
constexpr std::chrono::seconds kReadTimeout{60};
constexpr std::chrono::seconds kWriteTimeout{60};
// After refusing an oversized body, how long and how much of it we swallow so
// that the client reads our 413 instead of a connection reset.
constexpr std::chrono::seconds kDrainTimeout{5};
constexpr size_t kDrainMaxBytes = 64 << 20;
constexpr size_t kHeaderLimit = 16 << 10;

// Who is asking, or why they may not: evaluated for every request.
using Authenticate = std::function<Result<std::string>(const HttpRequest&)>;

// A request a handler agreed to upgrade to a WebSocket.
struct Upgrade {
  ApiResponse response;
  HttpRequest request;
};

// Routes one request, with authentication; never throws.
ApiResponse HandleRequest(const HttpRequest& req,
                          const Authenticate& authenticate,
                          const ConnectionEnv& env);

template <class Stream>
beast::error_code WriteResponse(net::io_context& ioc, Stream& stream,
                                ApiResponse response, unsigned version,
                                bool keep_alive) {
  http::response<http::string_body> res{
      static_cast<http::status>(response.status), version};
  res.set(http::field::server, "vireo");
  res.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.body() = std::move(response.body);
  res.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(kWriteTimeout);
  return RunAsync(ioc, [&](auto handler) {
    http::async_write(stream, res, std::move(handler));
  });
}

// Reads and discards what the client still sends, until it closes, a time
// limit or a byte limit.
template <class Stream>
void Drain(net::io_context& ioc, Stream& stream) {
  std::array<char, 16384> scratch;
  size_t total = 0;
  beast::get_lowest_layer(stream).expires_after(kDrainTimeout);
  while (total < kDrainMaxBytes) {
    size_t got = 0;
    auto ec = RunAsync(ioc, [&](auto handler) {
      stream.async_read_some(net::buffer(scratch),
                             [&got, handler = std::move(handler)](
                                 beast::error_code e, size_t n) mutable {
                               got = n;
                               handler(e);
                             });
    });
    if (ec) return;
    total += got;
  }
}

// Serves requests until the connection ends or a handler asks for a
// WebSocket upgrade, which is returned for the caller to run.
template <class Stream>
std::optional<Upgrade> ServeRequests(net::io_context& ioc, Stream& stream,
                                     const Authenticate& authenticate,
                                     const ConnectionEnv& env) {
  beast::flat_buffer buffer;
  while (!env.ctx->stopping.load()) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(env.max_body_bytes);
    parser.header_limit(kHeaderLimit);
    beast::get_lowest_layer(stream).expires_after(kReadTimeout);
    auto ec = RunAsync(ioc, [&](auto handler) {
      http::async_read_header(stream, buffer, parser, std::move(handler));
    });
    if (!ec && !parser.is_done()) {
      // curl and others wait for "100 Continue" before sending a large body.
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_,
                                              parser.get().version()};
        ec = RunAsync(ioc, [&](auto handler) {
          http::async_write(stream, cont, std::move(handler));
        });
      }
      if (!ec) {
        ec = RunAsync(ioc, [&](auto handler) {
          http::async_read(stream, buffer, parser, std::move(handler));
        });
      }
    }
    if (ec == http::error::body_limit) {
      ApiResponse response =
          ErrorResponse(413, "too_large",
                        "request body exceeds the limit of " +
                            std::to_string(env.max_body_bytes) + " bytes");
      LOG_DEBUG("{} {} -> 413", std::string(parser.get().method_string()),
                std::string(parser.get().target()));
      if (!WriteResponse(ioc, stream, std::move(response),
                         parser.get().version(), false)) {
        Drain(ioc, stream);
      }
      return std::nullopt;
    }
    if (ec) {
      // Garbage on the wire gets one answer before we hang up; transport
      // errors, timeouts and clean closes just end the connection.
      const bool parse_error =
          ec.category() ==
              http::make_error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream &&
          ec != http::error::partial_message;
      if (parse_error) {
        ApiResponse response = ErrorResponse(
            400, "invalid_argument", "malformed HTTP request: " + ec.message());
        (void)WriteResponse(ioc, stream, std::move(response), 11, false);
      }
      return std::nullopt;
    }

    HttpRequest req = parser.release();
    const auto start = std::chrono::steady_clock::now();
    ApiResponse response = HandleRequest(req, authenticate, env);
    [[maybe_unused]] const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start)
            .count();
    LOG_DEBUG("{} {} -> {} ({} ms)", std::string(req.method_string()),
              std::string(req.target()),
              response.upgrade != ApiResponse::Upgrade::kNone ? 101u
                                                              : response.status,
              ms);
    if (response.upgrade != ApiResponse::Upgrade::kNone) {
      return Upgrade{std::move(response), std::move(req)};
    }
    const bool keep_alive = req.keep_alive() && !env.ctx->stopping.load();
    if (WriteResponse(ioc, stream, std::move(response), req.version(),
                      keep_alive)) {
      return std::nullopt;
    }
    if (!keep_alive) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace http_session

}  // namespace vireo
