#pragma once

// HTTP/1.1 request loop shared by the unix and TLS listeners. Header-only
// because it is a template over the stream type; used by connection.cc only.

#include <unistd.h>

#include <array>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "api/connection.h"
#include "api/io_util.h"
#include "api/responses.h"
#include "api/router.h"
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

// Who is asking: evaluated for every request.
struct Principal {
  std::string identity;  // "root", "token:<name>", "user:<name>"
  std::string role;      // "admin" | "user"
  bool via_cookie = false;
  std::string session_token;
};
// The caller's principal, or why they may not: kUnauthenticated when no or
// bad credentials came (some paths allow that, see access_policy.h).
using Authenticate = std::function<Result<Principal>(const HttpRequest&)>;

// A request a handler agreed to upgrade to a WebSocket.
struct Upgrade {
  ApiResponse response;
  HttpRequest request;
};

// Everything before a handler runs: target parsing, static files (HTTPS),
// authentication, role and CSRF checks. Returns the answer when the request
// stops here, else fills *out (without the body).
std::optional<ApiResponse> Admit(const HttpRequest& req,
                                 const Authenticate& authenticate,
                                 const ConnectionEnv& env, bool https,
                                 ApiRequest* out);
// Admits and routes one request; never throws. upload_file: where an
// upload's body was streamed to (see upload_stream.h).
ApiResponse HandleRequest(const HttpRequest& req,
                          const Authenticate& authenticate,
                          const ConnectionEnv& env, bool https,
                          const std::string& upload_file = "");
// POST /1.0/images/upload: its body is streamed to a file, not buffered.
bool IsUpload(const HttpRequest& header);

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

// Removes a file unless released: an upload's temp file is the import
// operation's once it started, and garbage otherwise.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  ~TempFileGuard() { Remove(); }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  void Release() { path_.clear(); }
  void Remove() {
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
  }

 private:
  std::string path_;
};

// Where an upload's body goes: a hidden temp file in the image store's
// directory (same filesystem as the import's result; the store removes
// leftover ".tmp-" files at start).
std::string UploadTempPath(const ConnectionEnv& env);

// POST /1.0/images/upload, after its header: admits it (so nobody streams
// gigabytes unauthenticated), then streams the body into a temp file with a
// per-read idle timeout, and hands the file to the handler. Returns false
// when the connection must end.
template <class Stream>
bool ServeUpload(net::io_context& ioc, Stream& stream,
                 beast::flat_buffer& buffer,
                 http::request_parser<http::string_body>& parser,
                 const Authenticate& authenticate, const ConnectionEnv& env,
                 bool https) {
  const unsigned version = parser.get().version();
  const bool keep_alive = parser.get().keep_alive();
  ApiRequest request;
  std::optional<ApiResponse> refused =
      Admit(parser.get(), authenticate, env, https, &request);
  std::string path;
  if (!refused) {
    if (Status st = CheckUploadRequest(env.ctx, request); !st)
      refused = ErrorResponse(st.error());
  }
  if (!refused) {
    path = UploadTempPath(env);
    if (path.empty())
      refused = ErrorResponse(
          Error(ErrorCode::kUnavailable, "the image store is not available"));
  }
  if (refused) {
    LOG_DEBUG("upload refused before its body: {}", refused->status);
    if (!WriteResponse(ioc, stream, std::move(*refused), version, false))
      Drain(ioc, stream);
    return false;
  }
  http::request_parser<http::file_body> fp(std::move(parser));
  fp.body_limit(env.max_upload_bytes);
  beast::error_code ec;
  fp.get().body().open(path.c_str(), beast::file_mode::write_new, ec);
  if (ec) {
    ApiResponse failed = ErrorResponse(
        500, "io", "create upload file " + path + ": " + ec.message());
    (void)WriteResponse(ioc, stream, std::move(failed), version, false);
    return false;
  }
  TempFileGuard guard(path);
  if (!fp.is_done() &&
      beast::iequals(fp.get()[http::field::expect], "100-continue")) {
    http::response<http::empty_body> cont{http::status::continue_, version};
    ec = RunAsync(ioc, [&](auto handler) {
      http::async_write(stream, cont, std::move(handler));
    });
    if (ec) return false;
  }
  while (!fp.is_done()) {
    // An idle timeout per read, not a deadline for the whole body: a large
    // image over a slow link may take hours.
    beast::get_lowest_layer(stream).expires_after(kReadTimeout);
    ec = RunAsync(ioc, [&](auto handler) {
      http::async_read_some(stream, buffer, fp, std::move(handler));
    });
    if (ec) break;
  }
  if (ec == http::error::body_limit) {
    // Gone before the client hears the refusal, so it never sees a partial
    // file in the image store.
    guard.Remove();
    ApiResponse too_large =
        ErrorResponse(413, "too_large",
                      "upload exceeds the limit of " +
                          std::to_string(env.max_upload_bytes) + " bytes");
    if (!WriteResponse(ioc, stream, std::move(too_large), version, false))
      Drain(ioc, stream);
    return false;
  }
  if (ec) {
    LOG_DEBUG("upload to {} ended early: {}", path, ec.message());
    return false;
  }
  fp.get().body().close();
  HttpRequest header;
  header.base() = fp.get().base();
  ApiResponse response = HandleRequest(header, authenticate, env, https, path);
  LOG_DEBUG("POST {} (upload) -> {}", request.target, response.status);
  if (response.status == 202) guard.Release();
  const bool keep = keep_alive && !env.ctx->stopping.load();
  if (WriteResponse(ioc, stream, std::move(response), version, keep))
    return false;
  return keep;
}

// Serves requests until the connection ends or a handler asks for a
// WebSocket upgrade, which is returned for the caller to run.
template <class Stream>
std::optional<Upgrade> ServeRequests(net::io_context& ioc, Stream& stream,
                                     const Authenticate& authenticate,
                                     const ConnectionEnv& env, bool https) {
  beast::flat_buffer buffer;
  while (!env.ctx->stopping.load()) {
    http::request_parser<http::string_body> parser;
    // The limit depends on the target (uploads may be large), known only
    // after the header; the declared length is checked against it here,
    // chunked bodies by the parser as they arrive.
    parser.body_limit(boost::none);
    parser.header_limit(kHeaderLimit);
    beast::get_lowest_layer(stream).expires_after(kReadTimeout);
    auto ec = RunAsync(ioc, [&](auto handler) {
      http::async_read_header(stream, buffer, parser, std::move(handler));
    });
    uint64_t limit = env.max_body_bytes;
    bool upload = false;
    if (!ec) {
      upload = IsUpload(parser.get());
      if (upload) limit = env.max_upload_bytes;
      if (parser.content_length() && *parser.content_length() > limit)
        ec = http::error::body_limit;
      else
        parser.body_limit(limit);
    }
    if (!ec && upload) {
      if (!ServeUpload(ioc, stream, buffer, parser, authenticate, env, https))
        return std::nullopt;
      continue;
    }
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
                            std::to_string(limit) + " bytes");
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
    ApiResponse response = HandleRequest(req, authenticate, env, https);
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
