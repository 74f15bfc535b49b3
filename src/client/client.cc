#include "client/client.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "client/transport.h"

namespace vireo {

namespace http = boost::beast::http;
using namespace client_detail;  // NOLINT: internal plumbing of this library

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr uint64_t kMaxReplyBody = 256ull << 20;

using HttpRequest = http::request<http::string_body>;
using HttpParser = http::response_parser<http::string_body>;

// The result of one attempt at an exchange.
struct Exchange {
  beast::error_code ec;
  std::string stage;       // "connect", "send", "receive"
  bool got_reply = false;  // any response byte arrived
};

// Fills out.ec/out.stage on failure. connect == nullptr means already
// connected.
template <typename Stream, typename ConnectFn>
asio::awaitable<void> DoExchange(Stream& stream, ConnectFn connect,
                                 beast::flat_buffer& buffer,
                                 const HttpRequest& req, HttpParser& parser,
                                 Exchange& out) {
  if (connect) {
    out.stage = "connect";
    out.ec = co_await connect();
    if (out.ec) co_return;
  }
  out.stage = "send";
  auto [wec, wn] = co_await http::async_write(stream, req, kTuple);
  if (wec) {
    out.ec = wec;
    co_return;
  }
  out.stage = "receive";
  auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kTuple);
  out.got_reply = rn > 0 || parser.got_some();
  out.ec = rec;
}

ErrorCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
      return ErrorCode::kInvalidArgument;
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kFailedPrecondition;
    case 413:
      return ErrorCode::kTooLarge;
    case 422:
      return ErrorCode::kResourceExhausted;
    case 503:
      return ErrorCode::kUnavailable;
    case 504:
      return ErrorCode::kTimeout;
    default:
      return ErrorCode::kInternal;
  }
}

std::string JsonString(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>()
                                          : std::string();
}

// Error from an operation or error envelope: its "code" name if known,
// otherwise `fallback`.
Error ErrorFrom(const std::string& code_name, std::string message,
                ErrorCode fallback) {
  auto code = ErrorCodeFromName(code_name);
  if (message.empty()) message = "request failed";
  return Error(code ? *code : fallback, std::move(message));
}

bool IsAsyncEnvelope(const Json& j) {
  return j.is_object() && JsonString(j, "type") == "async" &&
         j.contains("operation");
}

}  // namespace

Result<ErrorCode> ErrorCodeFromName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    auto code = static_cast<ErrorCode>(i);
    if (ErrorCodeName(code) == name) return code;
  }
  return Err(ErrorCode::kInvalidArgument,
             "unknown error code: " + std::string(name));
}

std::string UrlEscape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<Json> DecodeReply(const HttpReply& reply) {
  auto parsed = ParseJson(reply.body);
  if (!parsed || !parsed->is_object()) {
    std::string snippet = reply.body.substr(0, 200);
    if (reply.status >= 400) {
      return tl::unexpected(Error(CodeForHttpStatus(reply.status),
                                  "HTTP " + std::to_string(reply.status) +
                                      (snippet.empty() ? "" : ": " + snippet)));
    }
    return Err(ErrorCode::kInternal, "malformed reply from server (HTTP " +
                                         std::to_string(reply.status) +
                                         "): " + snippet);
  }
  const Json& j = *parsed;
  std::string type = JsonString(j, "type");
  if (type == "error" || reply.status >= 400) {
    std::string message = JsonString(j, "error");
    if (message.empty()) message = "HTTP " + std::to_string(reply.status);
    return tl::unexpected(ErrorFrom(JsonString(j, "code"), std::move(message),
                                    CodeForHttpStatus(reply.status)));
  }
  if (type == "async") return j;
  if (type == "sync") return j.contains("metadata") ? j["metadata"] : Json();
  return Err(ErrorCode::kInternal,
             "unknown reply type from server: '" + type + "'");
}

struct ApiClient::Impl {
  ConnectionSpec spec;
  asio::io_context io;
  std::unique_ptr<UnixSocket> unix_socket;
  std::unique_ptr<TlsStream> tls;
  beast::flat_buffer buffer;
  std::chrono::seconds timeout{120};

  bool Connected() const { return unix_socket || tls; }

  void Disconnect() {
    beast::error_code ignored;
    if (unix_socket) unix_socket->close(ignored);
    if (tls) tls->next_layer().close(ignored);
    unix_socket.reset();
    tls.reset();
    buffer.clear();
  }

  // Aborts whatever is in flight, used on deadline.
  void Abort() {
    beast::error_code ignored;
    if (unix_socket) unix_socket->close(ignored);
    if (tls) tls->next_layer().close(ignored);
  }

  // One attempt; connects first when needed.
  Exchange Attempt(const HttpRequest& req, HttpParser& parser, bool& timed_out,
                   std::exception_ptr& failure) {
    Exchange out;
    bool connect = !Connected();
    if (connect) {
      if (spec.https) {
        tls = std::make_unique<TlsStream>(io, *spec.tls);
      } else {
        unix_socket = std::make_unique<UnixSocket>(io);
      }
    }
    if (tls) {
      std::function<asio::awaitable<beast::error_code>()> fn;
      if (connect) fn = [this] { return ConnectTls(*tls, *spec.https); };
      asio::co_spawn(io, DoExchange(*tls, fn, buffer, req, parser, out),
                     ExceptionSink{&failure});
    } else {
      std::function<asio::awaitable<beast::error_code>()> fn;
      if (connect)
        fn = [this] { return ConnectUnix(*unix_socket, spec.unix_socket); };
      asio::co_spawn(io, DoExchange(*unix_socket, fn, buffer, req, parser, out),
                     ExceptionSink{&failure});
    }
    timed_out = !RunUntil(io, Clock::now() + timeout, [this] { Abort(); });
    return out;
  }
};

ApiClient::ApiClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApiClient::~ApiClient() = default;

Result<std::unique_ptr<ApiClient>> ApiClient::Create(Endpoint endpoint) {
  auto impl = std::make_unique<Impl>();
  impl->spec.token = endpoint.token;
  if (!endpoint.url.empty()) {
    ASSIGN_OR_RETURN(impl->spec.https, ParseHttpsUrl(endpoint.url));
    ASSIGN_OR_RETURN(impl->spec.tls, MakeTlsContext());
  } else if (endpoint.unix_socket.empty()) {
    return Err(ErrorCode::kInvalidArgument,
               "no endpoint: need a unix socket path or a URL");
  } else {
    impl->spec.unix_socket = endpoint.unix_socket;
  }
  return std::unique_ptr<ApiClient>(new ApiClient(std::move(impl)));
}

void ApiClient::set_request_timeout(std::chrono::seconds timeout) {
  impl_->timeout = timeout;
}

std::string ApiClient::Describe() const { return impl_->spec.Describe(); }

Result<HttpReply> ApiClient::Request(std::string_view method,
                                     std::string_view target,
                                     const std::optional<Json>& body) {
  if (body) return RawRequest(method, target, body->dump());
  return RawRequest(method, target, std::nullopt);
}

Result<HttpReply> ApiClient::RawRequest(
    std::string_view method, std::string_view target,
    const std::optional<std::string>& body) {
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    return Err(ErrorCode::kInvalidArgument,
               "unknown HTTP method: " + std::string(method));
  }
  HttpRequest req(verb, target, 11);
  req.set(http::field::host, impl_->spec.HostHeader());
  req.set(http::field::user_agent, "vireo-client");
  req.set(http::field::accept, "application/json");
  if (impl_->spec.https && !impl_->spec.token.empty()) {
    req.set(http::field::authorization, "Bearer " + impl_->spec.token);
  }
  if (body) {
    req.set(http::field::content_type, "application/json");
    req.body() = *body;
  }
  req.keep_alive(true);
  req.prepare_payload();

  std::string what = std::string(method) + " " + std::string(target);
  for (int attempt = 0;; ++attempt) {
    bool reused = impl_->Connected();
    HttpParser parser;
    parser.body_limit(kMaxReplyBody);
    bool timed_out = false;
    std::exception_ptr failure;
    Exchange ex = impl_->Attempt(req, parser, timed_out, failure);
    if (failure) {
      impl_->Disconnect();
      return tl::unexpected(FromException(failure, what));
    }
    if (timed_out) {
      impl_->Disconnect();
      return Err(ErrorCode::kTimeout,
                 what + ": no reply from " + Describe() + " within " +
                     std::to_string(impl_->timeout.count()) + "s");
    }
    if (ex.ec) {
      impl_->Disconnect();
      // A kept-alive connection the server closed while idle: retry once on
      // a new one. Only when no reply byte arrived, so nothing was processed
      // that we would not know about.
      if (reused && attempt == 0 && !ex.got_reply && IsDisconnect(ex.ec))
        continue;
      std::string where = ex.stage == "connect" ? "connect " + Describe()
                                                : what + ": " + ex.stage;
      return tl::unexpected(FromBeast(ex.ec, where));
    }
    auto& res = parser.get();
    HttpReply reply;
    reply.status = static_cast<int>(res.result_int());
    reply.content_type = std::string(res[http::field::content_type]);
    reply.body = std::move(res.body());
    if (!res.keep_alive()) impl_->Disconnect();
    return reply;
  }
}

Result<Json> ApiClient::Call(std::string_view method, std::string_view target,
                             const std::optional<Json>& body) {
  ASSIGN_OR_RETURN(HttpReply reply, Request(method, target, body));
  return DecodeReply(reply);
}

Result<Json> ApiClient::CallAndWait(std::string_view method,
                                    std::string_view target,
                                    const std::optional<Json>& body,
                                    std::chrono::seconds timeout) {
  ASSIGN_OR_RETURN(Json value, Call(method, target, body));
  if (!IsAsyncEnvelope(value)) return value;
  std::string op_url = JsonString(value, "operation");
  Json op = value.contains("metadata") ? value["metadata"] : Json::object();
  return WaitOperation(op_url, std::move(op), timeout);
}

Result<Json> ApiClient::WaitOperation(const std::string& op_url, Json op,
                                      std::chrono::seconds timeout) {
  using std::chrono::seconds;
  // Each wait request asks the server to hold at most this long, so that a
  // single exchange stays well under the request timeout.
  constexpr seconds kMaxChunk(30);
  auto deadline = Clock::now() + timeout;
  for (bool first = true;; first = false) {
    std::string status =
        op.is_object() ? JsonString(op, "status") : std::string();
    if (status == "Success")
      return op.contains("metadata") ? op["metadata"] : Json::object();
    if (status == "Failure") {
      return tl::unexpected(ErrorFrom(
          JsonString(op, "code"), JsonString(op, "err"), ErrorCode::kInternal));
    }
    // The async envelope may omit the operation's state; the wait reply may
    // not.
    if (status != "Running" && !first) {
      return Err(
          ErrorCode::kInternal,
          "operation " + op_url + " has unexpected status '" + status + "'");
    }
    auto left = std::chrono::ceil<seconds>(deadline - Clock::now());
    if (left <= seconds(0)) {
      return Err(ErrorCode::kTimeout,
                 "operation " + op_url + " still running after " +
                     std::to_string(timeout.count()) + "s");
    }
    seconds chunk = std::min(left, kMaxChunk);
    auto saved = impl_->timeout;
    impl_->timeout = std::max(saved, chunk + seconds(30));
    auto next =
        Call("GET", op_url + "/wait?timeout=" + std::to_string(chunk.count()));
    impl_->timeout = saved;
    if (!next)
      return tl::unexpected(next.error().WithContext("wait for " + op_url));
    op = std::move(*next);
  }
}

Result<std::unique_ptr<WebSocket>> ApiClient::OpenWebSocket(
    std::string_view target) {
  return client_detail::OpenWebSocket(impl_->spec, target, impl_->timeout);
}

}  // namespace vireo
