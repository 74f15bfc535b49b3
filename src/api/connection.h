#pragma once

#include <boost/asio/ssl/context.hpp>
#include <cstddef>

#include "api/handlers.h"
#include "api/router.h"
#include "common/fd.h"

namespace vireo {

// Shared, read-only state every connection needs.
struct ConnectionEnv {
  const Router* router = nullptr;
  HandlerContext* ctx = nullptr;
  size_t max_body_bytes = 1 << 20;
};

// Serve one accepted connection until it closes; run on the connection's own
// thread. Never throw: a misbehaving client only ever ends its connection.
// Local socket: the peer's uid (SO_PEERCRED) must be 0.
void ServeUnixConnection(UniqueFd fd, const ConnectionEnv& env);
// HTTPS: every request needs "Authorization: Bearer <token>".
void ServeTlsConnection(UniqueFd fd, boost::asio::ssl::context& tls,
                        const ConnectionEnv& env);

}  // namespace vireo
