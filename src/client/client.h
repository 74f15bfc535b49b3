#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "client/websocket.h"
#include "common/error.h"
#include "common/json.h"

namespace vireo {

// Where the daemon listens. url wins when set; otherwise unix_socket is used.
struct Endpoint {
  std::string unix_socket;  // plain HTTP/1.1; the daemon trusts local root
  std::string url;          // "https://host:port"
  std::string token;        // bearer token for HTTPS
};

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// Decodes an API envelope: sync -> its metadata; async -> the whole envelope
// ("operation", "metadata"); error -> an Error with the code named by the
// envelope's "code" (or derived from the HTTP status) and its "error" text.
Result<Json> DecodeReply(const HttpReply& reply);
// The inverse of ErrorCodeName(); kInvalidArgument for an unknown name.
Result<ErrorCode> ErrorCodeFromName(std::string_view name);
// Percent-encodes a path segment or query value.
std::string UrlEscape(std::string_view text);

// A client of the Vireo REST API (docs/api.md). Keeps one connection alive
// across requests and transparently reconnects once when the server closed
// it in between.
//
// Thread-compatible, not thread-safe: use one ApiClient per thread. The
// WebSockets it opens are independent objects with their own connection.
class ApiClient {
 public:
  static Result<std::unique_ptr<ApiClient>> Create(Endpoint endpoint);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Upper bound for one HTTP exchange (connect + send + receive).
  void set_request_timeout(std::chrono::seconds timeout);
  // "unix:/run/vireo/vireo.sock" or "https://host:port", for messages.
  std::string Describe() const;

  // One raw HTTP exchange. Transport failures are errors; HTTP error
  // statuses are not (see DecodeReply).
  [[nodiscard]] Result<HttpReply> Request(std::string_view method,
                                          std::string_view target,
                                          const std::optional<Json>& body = {});
  // Like Request, with the body sent as given (tests send malformed JSON).
  [[nodiscard]] Result<HttpReply> RawRequest(
      std::string_view method, std::string_view target,
      const std::optional<std::string>& body);
  // Request + DecodeReply.
  [[nodiscard]] Result<Json> Call(std::string_view method,
                                  std::string_view target,
                                  const std::optional<Json>& body = {});
  // Like Call, but waits for an async operation to finish: returns the
  // operation's metadata on success, its error on failure, kTimeout when it
  // is still running after `timeout`.
  [[nodiscard]] Result<Json> CallAndWait(
      std::string_view method, std::string_view target,
      const std::optional<Json>& body = {},
      std::chrono::seconds timeout = std::chrono::seconds(300));
  // Waits for the operation at op_url ("/1.0/operations/<id>") given its
  // current state; same outcome as CallAndWait.
  [[nodiscard]] Result<Json> WaitOperation(const std::string& op_url, Json op,
                                           std::chrono::seconds timeout);

  // Opens a WebSocket on a fresh connection (e.g. /1.0/events).
  [[nodiscard]] Result<std::unique_ptr<WebSocket>> OpenWebSocket(
      std::string_view target);

 private:
  struct Impl;
  explicit ApiClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vireo
