// /1.0/images: the image store (import, publish, export, aliases).

#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"

namespace vireo {

namespace {

// Absent or null leaves *out unchanged.
Status ReadStringField(const Json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_string())
    return Err(ErrorCode::kInvalidArgument,
               "field '" + std::string(key) + "' must be a string");
  *out = it->get<std::string>();
  return Ok();
}

Result<ImageImportRequest> ParseImportRequest(std::string_view body) {
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(body));
  TRY(RejectUnknownFields(
      j, {"source", "instance", "alias", "aliases", "os", "description"}));
  ImageImportRequest r;
  TRY(ReadStringField(j, "source", &r.source));
  TRY(ReadStringField(j, "instance", &r.instance));
  TRY(ReadStringField(j, "os", &r.os));
  TRY(ReadStringField(j, "description", &r.description));
  std::string alias;
  TRY(ReadStringField(j, "alias", &alias));
  if (!alias.empty()) r.aliases.push_back(alias);
  auto aliases = j.find("aliases");
  if (aliases != j.end() && !aliases->is_null()) {
    if (!aliases->is_array())
      return Err(ErrorCode::kInvalidArgument,
                 "field 'aliases' must be an array of strings");
    for (const auto& a : *aliases) {
      if (!a.is_string())
        return Err(ErrorCode::kInvalidArgument,
                   "field 'aliases' must be an array of strings");
      r.aliases.push_back(a.get<std::string>());
    }
  }
  if (r.aliases.empty())
    return Err(ErrorCode::kInvalidArgument, "missing field 'alias'");
  return r;
}

ApiResponse Unavailable() {
  return ErrorResponse(
      Error(ErrorCode::kUnavailable, "the image store is not available"));
}

ApiResponse ListImages(HandlerContext* ctx, ApiRequest& request) {
  if (!ctx->services.images) return Unavailable();
  auto recursion = QueryNonNegative(request, "recursion", 0, 2);
  if (!recursion) return ErrorResponse(recursion.error());
  auto list = ctx->services.images->List();
  if (!list) return ErrorResponse(list.error());
  Json out = Json::array();
  for (auto& image : *list) {
    if (*recursion == 0)
      out.push_back("/1.0/images/" + image.value("name", ""));
    else
      out.push_back(std::move(image));
  }
  return SyncResponse(std::move(out));
}

ApiResponse CreateImage(HandlerContext* ctx, ApiRequest& request) {
  if (!ctx->services.images) return Unavailable();
  auto parsed = ParseImportRequest(request.body);
  if (!parsed) return ErrorResponse(parsed.error());
  auto op = ctx->services.images->BeginImport(std::move(*parsed));
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

ApiResponse GetImage(HandlerContext* ctx, ApiRequest& request) {
  if (!ctx->services.images) return Unavailable();
  auto image = ctx->services.images->Get(request.params.at("name"));
  if (!image) return ErrorResponse(image.error());
  return SyncResponse(std::move(*image));
}

ApiResponse DeleteImage(HandlerContext* ctx, ApiRequest& request) {
  if (!ctx->services.images) return Unavailable();
  auto st = ctx->services.images->Delete(request.params.at("name"));
  if (!st) return ErrorResponse(st.error());
  return SyncResponse(Json::object());
}

ApiResponse ExportImage(HandlerContext* ctx, ApiRequest& request) {
  if (!ctx->services.images) return Unavailable();
  auto j = ParseJsonObject(request.body);
  if (!j) return ErrorResponse(j.error());
  std::string path, format;
  Status st = RejectUnknownFields(*j, {"path", "format"});
  if (st) st = ReadStringField(*j, "path", &path);
  if (st) st = ReadStringField(*j, "format", &format);
  if (st && path.empty())
    st = Err(ErrorCode::kInvalidArgument, "missing field 'path'");
  if (!st) return ErrorResponse(st.error());
  auto op = ctx->services.images->BeginExport(request.params.at("name"), path,
                                              format);
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

ApiResponse AddAlias(HandlerContext* ctx, ApiRequest& request) {
  if (!ctx->services.images) return Unavailable();
  auto j = ParseJsonObject(request.body);
  if (!j) return ErrorResponse(j.error());
  std::string alias;
  Status st = RejectUnknownFields(*j, {"alias"});
  if (st) st = ReadStringField(*j, "alias", &alias);
  if (st && alias.empty())
    st = Err(ErrorCode::kInvalidArgument, "missing field 'alias'");
  if (!st) return ErrorResponse(st.error());
  auto image = ctx->services.images->AddAlias(request.params.at("name"), alias);
  if (!image) return ErrorResponse(image.error());
  return SyncResponse(std::move(*image));
}

ApiResponse RemoveAlias(HandlerContext* ctx, ApiRequest& request) {
  if (!ctx->services.images) return Unavailable();
  auto image = ctx->services.images->RemoveAlias(request.params.at("name"),
                                                 request.params.at("alias"));
  if (!image) return ErrorResponse(image.error());
  return SyncResponse(std::move(*image));
}

}  // namespace

void RegisterImageRoutes(Router& router, HandlerContext* ctx) {
  router.Add("GET", "/1.0/images", Bind(ctx, ListImages));
  router.Add("POST", "/1.0/images", Bind(ctx, CreateImage));
  router.Add("GET", "/1.0/images/{name}", Bind(ctx, GetImage));
  router.Add("DELETE", "/1.0/images/{name}", Bind(ctx, DeleteImage));
  router.Add("POST", "/1.0/images/{name}/export", Bind(ctx, ExportImage));
  router.Add("POST", "/1.0/images/{name}/aliases", Bind(ctx, AddAlias));
  router.Add("DELETE", "/1.0/images/{name}/aliases/{alias}",
             Bind(ctx, RemoveAlias));
}

}  // namespace vireo
