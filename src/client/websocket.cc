#include "client/websocket.h"

#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <functional>

#include "client/client.h"
#include "client/terminal.h"
#include "client/transport.h"

namespace vireo::client_detail {

namespace websocket = beast::websocket;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// After stdin ends (not a terminal), keep printing output until it has been
// quiet this long, but no longer than kMaxLinger.
constexpr auto kQuiet = std::chrono::milliseconds(1500);
constexpr auto kMaxLinger = std::chrono::seconds(15);
constexpr auto kCloseTimeout = std::chrono::seconds(3);

Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoErr("write console output");
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Ok();
}

struct RelayState {
  bool done = false;        // the socket read side ended
  bool closing = false;     // we sent a close frame
  beast::error_code error;  // why the read side ended, when abnormal
  Status output_status;
  Clock::time_point last_output = Clock::now();
};

template <typename Next>
class WebSocketImpl final : public WebSocket {
 public:
  using Stream = websocket::stream<Next>;

  WebSocketImpl(std::unique_ptr<asio::io_context> io,
                std::shared_ptr<asio::ssl::context> tls,
                std::unique_ptr<Stream> ws)
      : io_(std::move(io)), tls_(std::move(tls)), ws_(std::move(ws)) {}
  ~WebSocketImpl() override { Close(); }

  Result<std::string> Read() override {
    beast::flat_buffer buffer;
    beast::error_code ec;
    ws_->read(buffer, ec);
    if (ec) {
      if (ec == websocket::error::closed || IsDisconnect(ec)) {
        return Err(ErrorCode::kUnavailable, "websocket closed by the server");
      }
      return tl::unexpected(FromBeast(ec, "websocket read"));
    }
    return beast::buffers_to_string(buffer.data());
  }

  Result<std::string> ReadFor(std::chrono::milliseconds timeout) override {
    if (closed_)
      return Err(ErrorCode::kFailedPrecondition, "websocket is closed");
    beast::flat_buffer buffer;
    beast::error_code ec;
    bool done = false;
    ws_->async_read(buffer, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    io_->restart();
    bool in_time = RunUntil(*io_, Clock::now() + timeout, [this] {
      beast::error_code ignored;
      beast::get_lowest_layer(*ws_).close(ignored);
    });
    if (!in_time || !done) {
      closed_ = true;
      return Err(ErrorCode::kTimeout, "websocket read: nothing within " +
                                          std::to_string(timeout.count()) +
                                          " ms");
    }
    if (ec) {
      if (ec == websocket::error::closed || IsDisconnect(ec)) {
        return Err(ErrorCode::kUnavailable, "websocket closed by the server");
      }
      return tl::unexpected(FromBeast(ec, "websocket read"));
    }
    return beast::buffers_to_string(buffer.data());
  }

  Status Write(std::string_view data, bool binary) override {
    beast::error_code ec;
    ws_->binary(binary);
    ws_->write(asio::buffer(data.data(), data.size()), ec);
    if (ec) return tl::unexpected(FromBeast(ec, "websocket write"));
    return Ok();
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    if (ws_->is_open()) {
      // Async so that a silent peer cannot hold us past the deadline.
      asio::co_spawn(*io_, CloseAsync(), asio::detached);
      RunUntil(*io_, Clock::now() + kCloseTimeout, [this] { CloseSocket(); });
    }
    CloseSocket();
  }

  Status RelayInteractive(int in_fd, int out_fd, char escape) override {
    if (closed_)
      return Err(ErrorCode::kFailedPrecondition, "websocket is closed");
    bool tty = ::isatty(in_fd);
    std::unique_ptr<RawTerminal> raw;
    if (tty) {
      ASSIGN_OR_RETURN(raw, RawTerminal::Enter(in_fd));
    }
    FdFlagsGuard flags_guard(in_fd);
    ws_->binary(true);
    ws_->set_option(
        websocket::stream_base::timeout::suggested(beast::role_type::client));

    asio::posix::stream_descriptor input(*io_);
    beast::error_code ec;
    input.assign(in_fd, ec);
    if (ec) return tl::unexpected(FromBeast(ec, "console input"));
    asio::steady_timer timer(*io_);
    RelayState state;
    std::exception_ptr failure;
    io_->restart();
    asio::co_spawn(*io_, PumpOutput(state, out_fd, input, timer),
                   ExceptionSink{&failure});
    asio::co_spawn(*io_, PumpInput(state, input, timer, escape, tty),
                   ExceptionSink{&failure});
    try {
      io_->run();
    } catch (...) {
      failure = std::current_exception();
    }
    input.release();  // in_fd belongs to the caller
    raw.reset();
    if (failure) return tl::unexpected(FromException(failure, "console"));
    TRY(state.output_status);
    if (state.error)
      return tl::unexpected(FromBeast(state.error, "console connection"));
    return Ok();
  }

 private:
  asio::awaitable<void> CloseAsync() {
    co_await ws_->async_close(websocket::close_code::normal, kTuple);
  }

  void CloseSocket() {
    beast::error_code ignored;
    beast::get_lowest_layer(*ws_).close(ignored);
  }

  asio::awaitable<void> PumpOutput(RelayState& state, int out_fd,
                                   asio::posix::stream_descriptor& input,
                                   asio::steady_timer& timer) {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws_->async_read(buffer, kTuple);
      if (ec) {
        // Our own close makes the pending read end with operation_aborted.
        bool ours = state.closing &&
                    (IsDisconnect(ec) || ec == asio::error::operation_aborted);
        if (ec != websocket::error::closed && !ours) {
          state.error = ec;
        }
        break;
      }
      auto data = buffer.data();  // a flat_buffer holds one contiguous block
      state.output_status =
          WriteAll(out_fd, static_cast<const char*>(data.data()), data.size());
      buffer.consume(n);
      state.last_output = Clock::now();
      if (!state.output_status) break;
    }
    state.done = true;
    beast::error_code ignored;
    input.cancel(ignored);
    timer.cancel();
    if (!state.output_status && !state.closing) {
      state.closing = true;
      co_await ws_->async_close(websocket::close_code::normal, kTuple);
    }
  }

  asio::awaitable<void> PumpInput(RelayState& state,
                                  asio::posix::stream_descriptor& input,
                                  asio::steady_timer& timer, char escape,
                                  bool tty) {
    std::array<char, 4096> buf;
    bool detach = false;
    while (!detach) {
      auto [ec, n] = co_await input.async_read_some(asio::buffer(buf), kTuple);
      if (state.done) co_return;
      if (ec) break;  // end of input (or an unreadable fd): stop sending
      std::string_view chunk(buf.data(), n);
      size_t pos = chunk.find(escape);
      detach = pos != std::string_view::npos;
      if (detach) chunk = chunk.substr(0, pos);
      if (!chunk.empty()) {
        auto [wec, wn] = co_await ws_->async_write(
            asio::buffer(chunk.data(), chunk.size()), kTuple);
        if (wec || state.done) co_return;  // the read side reports the failure
      }
    }
    if (!tty && !detach) {
      auto eof_at = Clock::now();
      while (!state.done && Clock::now() - eof_at < kMaxLinger) {
        timer.expires_after(kQuiet);
        co_await timer.async_wait(kTuple);
        if (state.done || Clock::now() - state.last_output >= kQuiet) break;
      }
    }
    if (state.done || state.closing) co_return;
    state.closing = true;
    co_await ws_->async_close(websocket::close_code::normal, kTuple);
  }

  std::unique_ptr<asio::io_context> io_;
  std::shared_ptr<asio::ssl::context> tls_;  // outlives the TLS stream
  std::unique_ptr<Stream> ws_;
  bool closed_ = false;
};

template <typename Next>
asio::awaitable<void> Handshake(
    websocket::stream<Next>& ws,
    std::function<asio::awaitable<beast::error_code>()> connect,
    std::string host, std::string target, websocket::response_type& res,
    beast::error_code& ec, std::string& stage) {
  stage = "connect";
  ec = co_await connect();
  if (ec) co_return;
  stage = "handshake";
  auto [hec] = co_await ws.async_handshake(res, host, target, kTuple);
  ec = hec;
}

template <typename Next>
Result<std::unique_ptr<WebSocket>> Open(
    std::unique_ptr<asio::io_context> io_arg,
    std::shared_ptr<asio::ssl::context> tls,
    std::unique_ptr<websocket::stream<Next>> ws_arg,
    std::function<asio::awaitable<beast::error_code>()> connect,
    const ConnectionSpec& spec, std::string_view target,
    Clock::duration timeout) {
  // Locals, not parameters, so that on error the stream dies before its
  // io_context (parameter destruction order is unspecified).
  auto io = std::move(io_arg);
  auto ws = std::move(ws_arg);
  if (spec.https && !spec.token.empty()) {
    ws->set_option(websocket::stream_base::decorator(
        [token = spec.token](websocket::request_type& req) {
          req.set(beast::http::field::authorization, "Bearer " + token);
        }));
  }
  ws->read_message_max(64ull << 20);
  websocket::response_type res;
  beast::error_code ec;
  std::string stage;
  std::exception_ptr failure;
  asio::co_spawn(*io,
                 Handshake(*ws, std::move(connect), spec.HostHeader(),
                           std::string(target), res, ec, stage),
                 ExceptionSink{&failure});
  auto& lowest = beast::get_lowest_layer(*ws);
  bool ok = RunUntil(*io, Clock::now() + timeout, [&lowest] {
    beast::error_code ignored;
    lowest.close(ignored);
  });
  std::string what = "websocket " + std::string(target);
  if (failure) return tl::unexpected(FromException(failure, what));
  if (!ok)
    return Err(ErrorCode::kTimeout,
               what + ": no answer from " + spec.Describe());
  if (ec) {
    if (stage == "handshake" && res.result_int() != 0 &&
        res.result_int() != 101) {
      HttpReply reply{static_cast<int>(res.result_int()),
                      std::string(res[beast::http::field::content_type]),
                      res.body()};
      auto decoded = DecodeReply(reply);
      if (!decoded) return tl::unexpected(decoded.error());
      return Err(ErrorCode::kInternal, what + ": upgrade refused with HTTP " +
                                           std::to_string(reply.status));
    }
    return tl::unexpected(FromBeast(
        ec, stage == "connect" ? "connect " + spec.Describe() : what));
  }
  return std::unique_ptr<WebSocket>(
      new WebSocketImpl<Next>(std::move(io), std::move(tls), std::move(ws)));
}

}  // namespace

Result<std::unique_ptr<WebSocket>> OpenWebSocket(const ConnectionSpec& spec,
                                                 std::string_view target,
                                                 Clock::duration timeout) {
  auto io = std::make_unique<asio::io_context>();
  if (spec.https) {
    auto ws = std::make_unique<websocket::stream<TlsStream>>(*io, *spec.tls);
    auto* stream = &ws->next_layer();
    auto connect = [stream, https = *spec.https] {
      return ConnectTls(*stream, https);
    };
    return Open<TlsStream>(std::move(io), spec.tls, std::move(ws), connect,
                           spec, target, timeout);
  }
  auto ws = std::make_unique<websocket::stream<UnixSocket>>(*io);
  auto* socket = &ws->next_layer();
  auto connect = [socket, path = spec.unix_socket] {
    return ConnectUnix(*socket, path);
  };
  return Open<UnixSocket>(std::move(io), nullptr, std::move(ws), connect, spec,
                          target, timeout);
}

}  // namespace vireo::client_detail
