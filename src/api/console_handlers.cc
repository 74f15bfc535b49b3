// Graphical and serial consoles over one-time-secret WebSockets, and
// screenshots (docs/consoles.md).

#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"
#include "core/console_tickets.h"
#include "core/validation.h"

namespace vireo {

namespace {

Result<std::string> ParseConsoleType(std::string_view body) {
  std::string type = "serial";
  bool blank = true;
  for (char c : body)
    blank = blank && std::isspace(static_cast<unsigned char>(c));
  if (blank) return type;
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(body));
  TRY(RejectUnknownFields(j, {"type"}));
  if (j.contains("type")) {
    if (!j["type"].is_string()) {
      return Err(ErrorCode::kInvalidArgument, "field 'type' must be a string");
    }
    type = j["type"].get<std::string>();
  }
  if (type != "vga" && type != "serial") {
    return Err(ErrorCode::kInvalidArgument,
               "console type '" + type + "' is not one of vga, serial");
  }
  return type;
}

Status CheckRunning(const Instance& instance) {
  const InstanceState state = instance.status.state;
  if (state != InstanceState::kRunning && state != InstanceState::kPaused) {
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + instance.name() + "' is not running (state " +
                   std::string(ToString(state)) + ")");
  }
  return Ok();
}

ApiResponse CreateConsole(HandlerContext* ctx, ApiRequest& request) {
  const std::string& name = request.params.at("name");
  if (auto valid = ValidateInstanceName(name); !valid)
    return ErrorResponse(valid.error());
  ConsoleTickets* tickets = ctx->services.console_tickets;
  if (tickets == nullptr) {
    return ErrorResponse(503, "unavailable", "consoles are not configured");
  }
  auto instance = ctx->services.instances->Get(name);
  if (!instance) return ErrorResponse(instance.error());
  auto type = ParseConsoleType(request.body);
  if (!type) return ErrorResponse(type.error());
  if (auto running = CheckRunning(*instance); !running)
    return ErrorResponse(running.error());
  auto paths = ctx->services.instances->Paths(name);
  if (!paths) return ErrorResponse(paths.error());

  ConsoleTickets::Issued ticket = tickets->Issue(
      {name, *type, *type == "vga" ? paths->vnc_socket : paths->serial_socket});
  Json metadata = {
      {"type", *type}, {"instance", name}, {"expires_at", ticket.expires_at}};
  // The operation lives as long as the console session: it fails if the
  // ticket expires unused and succeeds when the relay ends.
  Operation op = ctx->services.operations->Start(
      (*type == "vga" ? "Graphical console of " : "Serial console of ") + name,
      {{"instances", {"/1.0/instances/" + name}}}, std::move(metadata),
      "websocket", [tickets, key = ticket.key] { return tickets->Await(key); });
  tickets->Bind(ticket.key, op.id);

  ApiResponse response = AsyncResponse(op);
  // The secret goes to this caller only: never into the operation itself,
  // which GET /1.0/operations and the event stream show to everyone.
  Json body = Json::parse(response.body);
  body["secret"] = ticket.secret;
  response.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return response;
}

ApiResponse OperationWebsocket(HandlerContext* ctx, ApiRequest& request) {
  if (!request.websocket_upgrade) {
    return ErrorResponse(400, "invalid_argument",
                         "this endpoint needs a WebSocket upgrade");
  }
  ConsoleTickets* tickets = ctx->services.console_tickets;
  auto it = request.query.find("secret");
  if (tickets == nullptr || it == request.query.end()) {
    return ErrorResponse(
        Error(ErrorCode::kPermissionDenied, "missing console secret"));
  }
  auto redeemed = tickets->Redeem(request.params.at("id"), it->second);
  if (!redeemed) return ErrorResponse(redeemed.error());

  ApiResponse response;
  response.upgrade = ApiResponse::Upgrade::kRelay;
  response.relay_ticket = redeemed->key;
  response.console_socket = redeemed->target.socket;
  if (redeemed->target.type == "serial") {
    // QEMU's serial chardev serves one client at a time.
    if (!ctx->consoles.TryClaim(redeemed->target.instance)) {
      tickets->Finish(redeemed->key, "the serial console is already attached");
      return ErrorResponse(
          Error(ErrorCode::kFailedPrecondition, "the console of '" +
                                                    redeemed->target.instance +
                                                    "' is already attached"));
    }
    response.console_instance = redeemed->target.instance;
  }
  return response;
}

ApiResponse Screenshot(HandlerContext* ctx, ApiRequest& request) {
  const std::string& name = request.params.at("name");
  if (auto valid = ValidateInstanceName(name); !valid)
    return ErrorResponse(valid.error());
  auto png = ctx->services.instances->Screenshot(name);
  if (!png) return ErrorResponse(png.error());
  ApiResponse response;
  response.content_type = "image/png";
  response.headers["Cache-Control"] = "no-store";
  response.body = std::move(*png);
  return response;
}

}  // namespace

bool IsConsoleWebsocketPath(std::string_view target) {
  // GET /1.0/operations/{id}/websocket, whatever the query.
  std::string_view path = target.substr(0, target.find('?'));
  std::vector<std::string> segments = SplitPath(path);
  return segments.size() == 4 && segments[0] == "1.0" &&
         segments[1] == "operations" && segments[3] == "websocket";
}

void RegisterConsoleRoutes(Router& router, HandlerContext* ctx) {
  router.Add("POST", "/1.0/instances/{name}/console", Bind(ctx, CreateConsole));
  router.Add("GET", "/1.0/operations/{id}/websocket",
             Bind(ctx, OperationWebsocket));
  router.Add("GET", "/1.0/instances/{name}/screenshot", Bind(ctx, Screenshot));
}

}  // namespace vireo
