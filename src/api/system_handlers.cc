#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"

namespace vireo {

namespace {

ApiResponse GetServer(HandlerContext* ctx, ApiRequest&) {
  Json env = {{"accelerator", ctx->services.accelerator},
              {"accelerator_reason", ctx->services.accelerator_reason},
              {"server", "vireo"}};
  // Where the web UI and its consoles are served (vireo console --vga).
  if (!ctx->https_address.empty()) env["https_address"] = ctx->https_address;
  return SyncResponse({{"api_version", "1.0"},
                       {"version", ctx->version},
                       {"auth", "trusted"},
                       {"environment", std::move(env)}});
}

ApiResponse GetResources(HandlerContext* ctx, ApiRequest&) {
  Json j = ctx->services.instances->HostResources();
  if (!j.is_object()) j = Json{{"host", std::move(j)}};
  if (!j.contains("accelerator")) j["accelerator"] = ctx->services.accelerator;
  if (!j.contains("accelerator_reason")) {
    j["accelerator_reason"] = ctx->services.accelerator_reason;
  }
  return SyncResponse(std::move(j));
}

ApiResponse Events(HandlerContext*, ApiRequest& request) {
  if (!request.websocket_upgrade) {
    return ErrorResponse(400, "invalid_argument",
                         "GET /1.0/events needs a WebSocket upgrade");
  }
  ApiResponse response;
  response.upgrade = ApiResponse::Upgrade::kEvents;
  return response;
}

Json TokenJson(const ApiToken& token) {
  return {
      {"id", token.id}, {"name", token.name}, {"created_at", token.created_at}};
}

ApiResponse ListTokens(HandlerContext* ctx, ApiRequest&) {
  auto tokens = ctx->services.tokens->List();
  if (!tokens) return ErrorResponse(tokens.error());
  Json out = Json::array();
  for (const ApiToken& token : *tokens) out.push_back(TokenJson(token));
  return SyncResponse(std::move(out));
}

ApiResponse CreateToken(HandlerContext* ctx, ApiRequest& request) {
  auto name = ParseTokenCreateRequest(request.body);
  if (!name) return ErrorResponse(name.error());
  auto created = ctx->services.tokens->Create(*name);
  if (!created) return ErrorResponse(created.error());
  Json j = TokenJson(created->token);
  j["secret"] = created->secret;
  return SyncResponse(std::move(j), 201);
}

ApiResponse DeleteToken(HandlerContext* ctx, ApiRequest& request) {
  auto status = ctx->services.tokens->Revoke(request.params.at("id"));
  if (!status) return ErrorResponse(status.error());
  return SyncResponse(Json::object());
}

ApiResponse Unavailable(HandlerContext*, ApiRequest&) {
  return ErrorResponse(503, "unavailable",
                       "API tokens are not configured on this server");
}

}  // namespace

void RegisterSystemRoutes(Router& router, HandlerContext* ctx) {
  router.Add("GET", "/1.0", Bind(ctx, GetServer));
  router.Add("GET", "/1.0/resources", Bind(ctx, GetResources));
  router.Add("GET", "/1.0/events", Bind(ctx, Events));
}

void RegisterTokenRoutes(Router& router, HandlerContext* ctx) {
  const bool ok = ctx->services.tokens != nullptr;
  router.Add("GET", "/1.0/tokens", Bind(ctx, ok ? ListTokens : Unavailable));
  router.Add("POST", "/1.0/tokens", Bind(ctx, ok ? CreateToken : Unavailable));
  router.Add("DELETE", "/1.0/tokens/{id}",
             Bind(ctx, ok ? DeleteToken : Unavailable));
}

}  // namespace vireo
