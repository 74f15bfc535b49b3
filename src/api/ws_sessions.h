#pragma once

// WebSocket sessions (events, serial console). Templates over the WebSocket
// stream type; used by connection.cc only. Both run asynchronous reads and
// writes on the connection's own io_context so that each direction proceeds
// independently within the connection's single thread.

#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "api/handlers.h"
#include "common/log.h"
#include "core/events.h"

namespace vireo {

namespace ws_session {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;

constexpr std::chrono::milliseconds kEventPoll{200};
// Upper bound for letting our own handlers finish after a close.
constexpr std::chrono::seconds kDrainTime{2};
// Bytes read from the VM's socket per WebSocket frame at most.
constexpr size_t kRelayChunk = 64 << 10;

// Closes the connection, then runs the io_context until none of our handlers
// is pending (`pending` counts them): they capture locals of the caller.
// Beast's own timers may stay queued; they hold only Beast's state and are
// destroyed with the io_context.
template <class Ws>
void CloseAndDrain(net::io_context& ioc, Ws& ws, const int& pending) {
  beast::error_code ignored;
  beast::get_lowest_layer(ws).socket().shutdown(net::socket_base::shutdown_both,
                                                ignored);
  beast::get_lowest_layer(ws).close();
  const auto deadline = std::chrono::steady_clock::now() + kDrainTime;
  ioc.restart();
  while (pending > 0 && std::chrono::steady_clock::now() < deadline) {
    if (ioc.run_one_for(std::chrono::milliseconds(100)) == 0) ioc.restart();
  }
}

// Sends every event as a text frame until the client goes away or the server
// stops. A pending read notices the client closing.
template <class Ws>
void RunEvents(net::io_context& ioc, Ws& ws,
               std::shared_ptr<EventSubscription> sub, HandlerContext* ctx) {
  bool closed = false;
  int pending = 0;
  beast::flat_buffer rbuf;
  std::function<void()> read;
  read = [&] {
    ++pending;
    ws.async_read(rbuf, [&](beast::error_code ec, size_t) {
      --pending;
      if (ec) {
        closed = true;
        return;
      }
      rbuf.consume(rbuf.size());  // clients have nothing to say here
      read();
    });
  };
  read();
  ws.text(true);
  while (!closed && !ctx->stopping.load() && !sub->closed()) {
    ioc.restart();
    ioc.poll();
    if (closed) break;
    auto event = sub->Next(kEventPoll);
    if (!event) continue;
    const std::string text =
        event->dump(-1, ' ', false, Json::error_handler_t::replace);
    bool written = false;
    beast::error_code wec;
    ++pending;
    ws.async_write(net::buffer(text), [&](beast::error_code ec, size_t) {
      --pending;
      wec = ec;
      written = true;
    });
    ioc.restart();
    while (!written && ioc.run_one() > 0) {
    }
    if (!written || wec) break;
  }
  sub->Close();
  CloseAndDrain(ioc, ws, pending);
}

// Relays bytes between the WebSocket (binary frames) and the VM's serial or
// VNC socket until either side closes. A client frame over the connection's
// read_message_max fails the read, and Beast closes with 1009 (too big).
template <class Ws>
void RunConsole(net::io_context& ioc, Ws& ws,
                net::local::stream_protocol::socket& serial,
                HandlerContext* ctx) {
  bool finished = false;
  bool closing = false;  // a polite WebSocket close is in flight
  int pending = 0;
  // Large reads keep VNC framebuffer updates in few frames.
  std::vector<char> from_serial(kRelayChunk);
  beast::flat_buffer from_ws;
  ws.binary(true);

  auto finish = [&](bool polite) {
    if (finished) return;
    finished = true;
    beast::error_code ignored;
    serial.close(ignored);
    if (polite) {
      // The VM side ended: tell the client properly. Only called when no
      // WebSocket write is in flight (writes and serial reads alternate).
      closing = true;
      ++pending;
      ws.async_close(websocket::close_code::normal, [&](beast::error_code) {
        --pending;
        closing = false;
      });
    }
  };

  std::function<void()> read_serial;
  read_serial = [&] {
    ++pending;
    serial.async_read_some(net::buffer(from_serial),
                           [&](beast::error_code ec, size_t n) {
                             --pending;
                             if (ec || finished) return finish(true);
                             ++pending;
                             ws.async_write(net::buffer(from_serial.data(), n),
                                            [&](beast::error_code wec, size_t) {
                                              --pending;
                                              if (wec || finished)
                                                return finish(false);
                                              read_serial();
                                            });
                           });
  };
  std::function<void()> read_ws;
  read_ws = [&] {
    ++pending;
    ws.async_read(from_ws, [&](beast::error_code ec, size_t) {
      --pending;
      if (ec || finished) return finish(false);
      ++pending;
      net::async_write(serial, from_ws.data(),
                       [&](beast::error_code wec, size_t) {
                         --pending;
                         from_ws.consume(from_ws.size());
                         if (wec || finished) return finish(false);
                         read_ws();
                       });
    });
  };
  read_serial();
  read_ws();
  // Stop() shuts the client socket down, which ends the WebSocket read and
  // with it the session; the flag check covers the rest.
  const auto stop_seen = [&] { return finished || ctx->stopping.load(); };
  ioc.restart();
  while (!stop_seen()) {
    if (ioc.run_one_for(std::chrono::milliseconds(500)) == 0) ioc.restart();
  }
  finish(false);
  // Give a polite close a moment to complete before tearing down.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(1);
  ioc.restart();
  while (closing && std::chrono::steady_clock::now() < deadline) {
    if (ioc.run_one_for(std::chrono::milliseconds(100)) == 0) ioc.restart();
  }
  CloseAndDrain(ioc, ws, pending);
}

}  // namespace ws_session

}  // namespace vireo
