#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace vireo {

// A decoded HTTP request, independent of the transport it came over.
struct ApiRequest {
  std::string method;                         // "GET", "POST", ...
  std::string target;                         // raw request target, for logs
  std::string path;                           // raw path, without the query
  std::map<std::string, std::string> query;   // percent-decoded
  std::map<std::string, std::string> params;  // {name} segments, decoded
  std::string body;
  bool websocket_upgrade = false;
  std::string identity;  // "root" on the unix socket, "token:<name>" on HTTPS
};

// What a handler wants sent back. A handler that accepts a WebSocket upgrade
// says so here; the connection runs the session after the handshake.
struct ApiResponse {
  // kRelay: a console WebSocket opened with a one-time secret
  // (console_socket is the VNC or serial socket, relay_ticket the ticket).
  enum class Upgrade { kNone, kEvents, kConsole, kRelay };
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::map<std::string, std::string> headers;
  Upgrade upgrade = Upgrade::kNone;
  std::string console_instance;  // for kConsole
  std::string console_socket;    // for kConsole: the VM's serial socket
  std::string relay_ticket;      // for kRelay: finished when the relay ends
};

using Handler = std::function<ApiResponse(ApiRequest&)>;

// Maps method + path pattern ("/1.0/instances/{name}/state") to handlers.
// Unknown paths answer 404, known paths with another method 405.
class Router {
 public:
  void Add(std::string method, std::string_view pattern, Handler handler);
  // Fills request.params and runs the matching handler.
  ApiResponse Dispatch(ApiRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{x}" marks a parameter
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Splits "/a/b?x=1" into path and query; the query is percent-decoded.
// kInvalidArgument for bad escapes.
Status ParseTarget(std::string_view target, std::string* path,
                   std::map<std::string, std::string>* query);
// Decodes %XX escapes (and '+' as space when form is true).
Result<std::string> PercentDecode(std::string_view text, bool form = false);
// Splits a path into segments; empty segments are dropped ("/1.0/" == "/1.0").
std::vector<std::string> SplitPath(std::string_view path);

}  // namespace vireo
