#include "api/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "api/connection.h"
#include "api/handlers.h"
#include "api/listener.h"
#include "api/router.h"
#include "auth/tls_cert.h"
#include "common/log.h"

namespace vireo {

namespace {

namespace ssl = boost::asio::ssl;

// A thread per connection: bound them so a flood cannot exhaust the host.
constexpr size_t kMaxConnections = 1024;

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0')
    return "localhost";
  return buf;
}

Result<std::unique_ptr<ssl::context>> MakeTlsContext(
    const ApiServerOptions& options) {
  TRY_CTX(EnsureSelfSignedCertificate(options.tls_cert_path,
                                      options.tls_key_path, HostName()),
          "TLS certificate");
  try {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds |
                     ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    ctx->use_certificate_chain_file(options.tls_cert_path);
    ctx->use_private_key_file(options.tls_key_path, ssl::context::pem);
    return ctx;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInvalidArgument,
               "load TLS certificate " + options.tls_cert_path + " / key " +
                   options.tls_key_path + ": " + e.what());
  }
}

class ApiServerImpl : public ApiServer {
 public:
  ApiServerImpl(ApiServerOptions options, ApiServices services)
      : options_(std::move(options)) {
    ctx_.services = std::move(services);
    ctx_.version = options_.version;
    RegisterSystemRoutes(router_, &ctx_);
    RegisterInstanceRoutes(router_, &ctx_);
    RegisterMediaRoutes(router_, &ctx_);
    RegisterOperationRoutes(router_, &ctx_);
    RegisterTokenRoutes(router_, &ctx_);
    RegisterImageRoutes(router_, &ctx_);
    RegisterNetworkRoutes(router_, &ctx_);
    RegisterStorageRoutes(router_, &ctx_);
    RegisterBackupStoreRoutes(router_, &ctx_);
    RegisterBackupJobRoutes(router_, &ctx_);
    env_.router = &router_;
    env_.ctx = &ctx_;
    env_.max_body_bytes = options_.max_body_bytes;
  }
  ~ApiServerImpl() override { Stop(); }

  Status Start() override {
    std::lock_guard lifecycle(lifecycle_mu_);
    if (started_)
      return Err(ErrorCode::kFailedPrecondition, "API server already started");
    if (!options_.unix_socket.empty()) {
      ASSIGN_OR_RETURN(unix_listener_,
                       Listener::BindUnix(options_.unix_socket));
    }
    if (!options_.https_address.empty()) {
      ASSIGN_OR_RETURN(tls_, MakeTlsContext(options_));
      ASSIGN_OR_RETURN(tls_listener_,
                       Listener::BindTcp(options_.https_address));
    }
    started_ = true;
    if (unix_listener_) {
      LOG_INFO("API listening on unix:{}", options_.unix_socket);
      acceptors_.emplace_back([this] {
        unix_listener_->Run([this](UniqueFd fd) {
          Spawn(std::move(fd), [this](UniqueFd conn) {
            ServeUnixConnection(std::move(conn), env_);
          });
        });
      });
    }
    if (tls_listener_) {
      LOG_INFO("API listening on https port {}", tls_listener_->port());
      acceptors_.emplace_back([this] {
        tls_listener_->Run([this](UniqueFd fd) {
          Spawn(std::move(fd), [this](UniqueFd conn) {
            ServeTlsConnection(std::move(conn), *tls_, env_);
          });
        });
      });
    }
    return Ok();
  }

  void Stop() override {
    std::lock_guard lifecycle(lifecycle_mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
    ctx_.stopping.store(true);
    if (unix_listener_) unix_listener_->Wake();
    if (tls_listener_) tls_listener_->Wake();
    for (auto& t : acceptors_) t.join();
    acceptors_.clear();

    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, conn] : conns_) {
        // Ends blocked reads and writes; the thread then winds down.
        if (conn.control_fd.valid())
          ::shutdown(conn.control_fd.get(), SHUT_RDWR);
        threads.push_back(std::move(conn.thread));
      }
    }
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
    {
      std::lock_guard lock(mu_);
      conns_.clear();
    }
    unix_listener_.reset();  // removes the socket file
    tls_listener_.reset();
    LOG_INFO("API stopped");
  }

  int https_port() const override {
    return tls_listener_ ? tls_listener_->port() : 0;
  }

 private:
  struct Conn {
    std::thread thread;
    // A duplicate of the connection's descriptor: shutdown() through it
    // interrupts the connection from Stop() without racing its close.
    UniqueFd control_fd;
    bool done = false;
  };

  // Starts a thread for a connection and reaps threads that have finished.
  void Spawn(UniqueFd fd, std::function<void(UniqueFd)> serve) {
    std::vector<std::thread> finished;
    {
      std::lock_guard lock(mu_);
      for (auto it = conns_.begin(); it != conns_.end();) {
        if (it->second.done) {
          finished.push_back(std::move(it->second.thread));
          it = conns_.erase(it);
        } else {
          ++it;
        }
      }
      if (conns_.size() >= kMaxConnections) {
        LOG_WARN("API: {} connections open, refusing another", conns_.size());
        return;
      }
      if (!ctx_.stopping.load()) {
        const uint64_t id = next_id_++;
        Conn& conn = conns_[id];
        conn.control_fd = UniqueFd(::dup(fd.get()));
        conn.thread = std::thread(
            [this, id, serve = std::move(serve), fd = std::move(fd)]() mutable {
              serve(std::move(fd));
              std::lock_guard done_lock(mu_);
              auto it = conns_.find(id);
              if (it != conns_.end()) {
                it->second.done = true;
                it->second.control_fd.Reset();
              }
            });
      }
    }
    for (auto& t : finished) t.join();
  }

  ApiServerOptions options_;
  HandlerContext ctx_;
  Router router_;
  ConnectionEnv env_;
  std::unique_ptr<ssl::context> tls_;
  std::unique_ptr<Listener> unix_listener_;
  std::unique_ptr<Listener> tls_listener_;
  std::vector<std::thread> acceptors_;

  std::mutex lifecycle_mu_;
  bool started_ = false;
  bool stopped_ = false;

  std::mutex mu_;  // guards conns_ and next_id_
  std::map<uint64_t, Conn> conns_;
  uint64_t next_id_ = 1;
};

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::Create(ApiServerOptions options,
                                                     ApiServices services) {
  if (options.unix_socket.empty() && options.https_address.empty()) {
    return Err(ErrorCode::kInvalidArgument,
               "API server needs a unix socket or an HTTPS address");
  }
  if (services.instances == nullptr || services.operations == nullptr ||
      services.events == nullptr) {
    return Err(ErrorCode::kInvalidArgument,
               "API server needs instance, operation and event services");
  }
  if (!options.https_address.empty() &&
      (options.tls_cert_path.empty() || options.tls_key_path.empty() ||
       services.tokens == nullptr)) {
    return Err(ErrorCode::kInvalidArgument,
               "HTTPS needs TLS certificate and key paths and a token service");
  }
  if (options.max_body_bytes == 0) options.max_body_bytes = 1 << 20;
  return std::unique_ptr<ApiServer>(
      new ApiServerImpl(std::move(options), std::move(services)));
}

}  // namespace vireo
