#pragma once

#include <boost/asio/ssl/context.hpp>
#include <cstddef>

#include "api/handlers.h"
#include "api/router.h"
#include "common/fd.h"

namespace vireo {
class StaticFiles;
}

namespace vireo {

// Shared, read-only state every connection needs.
struct ConnectionEnv {
  const Router* router = nullptr;
  HandlerContext* ctx = nullptr;
  size_t max_body_bytes = 1 << 20;
  // Web UI: files for HTTPS paths outside /1.0 (null: 404), and the limit
  // of a streamed POST /1.0/images/upload body.
  const StaticFiles* static_files = nullptr;
  uint64_t max_upload_bytes = uint64_t{64} << 30;
};

// Serve one accepted connection until it closes; run on the connection's own
// thread. Never throw: a misbehaving client only ever ends its connection.
// Local socket: the peer's uid (SO_PEERCRED) must be 0.
void ServeUnixConnection(UniqueFd fd, const ConnectionEnv& env);
// HTTPS: requests need "Authorization: Bearer <token>" or a vireo_session
// cookie, with the exceptions of api/access_policy.h; other paths are the
// web UI's static files.
void ServeTlsConnection(UniqueFd fd, boost::asio::ssl::context& tls,
                        const ConnectionEnv& env);

}  // namespace vireo
