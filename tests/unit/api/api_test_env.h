#pragma once

// A real ApiServer with real services in a temporary directory, plus a small
// Beast client that can send anything (including malformed requests).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "api/server.h"
#include "auth/token_service.h"
#include "common/json.h"
#include "core/events.h"
#include "core/instance_service.h"
#include "core/operations.h"
#include "core/resources.h"
#include "engine/qemu/qemu_engine.h"
#include "storage/dir_pool.h"
#include "store/sqlite/sqlite_store.h"

namespace vireo::testing {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace websocket = boost::beast::websocket;

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  http::fields headers;
  Json json;  // parsed body, or null when it is not JSON
};

inline Reply ToReply(http::response<http::string_body>& res) {
  Reply r;
  r.status = res.result_int();
  r.body = res.body();
  r.content_type = std::string(res[http::field::content_type]);
  r.headers = res.base();
  r.json = Json::parse(r.body, nullptr, false);
  if (r.json.is_discarded()) r.json = nullptr;
  return r;
}

class ApiServerTest : public ::testing::Test {
 protected:
  static constexpr size_t kBodyLimit = 64 << 10;

  void SetUp() override {
    char tmpl[] = "/tmp/vireo-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = SqliteStore::Open(dir_ + "/vireo.db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    QemuEngine::Options eo;
    eo.run_dir = dir_ + "/run";
    eo.accel_override = "tcg";
    auto engine = QemuEngine::Create(eo);
    ASSERT_TRUE(engine) << engine.error().ToString();
    engine_ = std::move(*engine);
    auto pool = DirPool::Create("default", dir_ + "/pool");
    ASSERT_TRUE(pool) << pool.error().ToString();
    pool_ = std::move(*pool);
    ops_ = std::make_unique<OperationManager>(&events_);
    resources_ =
        std::make_unique<ResourceTracker>(ProbeHost(), OvercommitPolicy{});
    instances_ = std::make_unique<InstanceService>(
        store_.get(), engine_.get(), pool_.get(), &events_, ops_.get(),
        resources_.get(), InstanceService::Options{});
    tokens_ = std::make_unique<TokenService>(store_.get());

    ApiServerOptions options;
    options.unix_socket = dir_ + "/sock/vireo.sock";
    options.https_address = "127.0.0.1:0";
    options.tls_cert_path = dir_ + "/tls/server.crt";
    options.tls_key_path = dir_ + "/tls/server.key";
    options.max_body_bytes = kBodyLimit;
    options.version = "9.9.9";
    ApiServices services;
    services.instances = instances_.get();
    services.operations = ops_.get();
    services.events = &events_;
    services.tokens = tokens_.get();
    services.accelerator = engine_->Accelerator();
    services.accelerator_reason = engine_->AcceleratorReason();
    auto server = ApiServer::Create(options, services);
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
    auto started = server_->Start();
    ASSERT_TRUE(started) << started.error().ToString();
    socket_path_ = options.unix_socket;
    cert_path_ = options.tls_cert_path;
  }

  void TearDown() override {
    if (server_) server_->Stop();
    server_.reset();
    instances_.reset();
    ops_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  // One request on a fresh unix-socket connection.
  Reply Unix(http::verb method, const std::string& target,
             const std::string& body = "") {
    net::io_context ioc;
    net::local::stream_protocol::socket sock(ioc);
    sock.connect(net::local::stream_protocol::endpoint(socket_path_));
    return Exchange(sock, method, target, body, {});
  }

  std::unique_ptr<ssl::context> ClientTls() {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->load_verify_file(
        cert_path_);  // pin the server's self-signed certificate
    ctx->set_verify_mode(ssl::verify_peer);
    return ctx;
  }

  // One request over HTTPS, verifying the certificate for "localhost".
  Reply Https(http::verb method, const std::string& target,
              const std::string& authorization, const std::string& body = "") {
    net::io_context ioc;
    auto tls = ClientTls();
    beast::ssl_stream<beast::tcp_stream> stream(ioc, *tls);
    stream.set_verify_callback(ssl::host_name_verification("localhost"));
    stream.next_layer().connect(net::ip::tcp::endpoint(
        net::ip::make_address("127.0.0.1"), server_->https_port()));
    stream.handshake(ssl::stream_base::client);
    http::fields extra;
    if (!authorization.empty())
      extra.set(http::field::authorization, authorization);
    return Exchange(stream, method, target, body, extra);
  }

  template <class Stream>
  static Reply Exchange(Stream& stream, http::verb method,
                        const std::string& target, const std::string& body,
                        const http::fields& extra) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    for (const auto& f : extra) req.set(f.name_string(), f.value());
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream, buffer, parser);
    return ToReply(parser.get());
  }

  // Waits for an operation through the API.
  Reply WaitOp(const Json& async_reply) {
    std::string url = async_reply.at("operation").get<std::string>();
    return Unix(http::verb::get, url + "/wait?timeout=30");
  }

  std::string dir_;
  std::string socket_path_;
  std::string cert_path_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<QemuEngine> engine_;
  std::unique_ptr<DirPool> pool_;
  EventBus events_;
  std::unique_ptr<OperationManager> ops_;
  std::unique_ptr<ResourceTracker> resources_;
  std::unique_ptr<InstanceService> instances_;
  std::unique_ptr<TokenService> tokens_;
  std::unique_ptr<ApiServer> server_;
};

}  // namespace vireo::testing
