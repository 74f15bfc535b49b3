// /1.0/storage-pools and their volumes.

#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"
#include "common/units.h"
#include "core/storage_service.h"
#include "core/validation.h"
#include "core/volume_service.h"

namespace vireo {

namespace {

Status Unavailable(const HandlerContext* ctx) {
  if (!ctx->services.storage || !ctx->services.volumes)
    return Err(ErrorCode::kUnavailable, "storage is not configured");
  return Ok();
}

Status ReadStr(const Json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_string())
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' must be a string");
  *out = it->get<std::string>();
  return Ok();
}

// A size as bytes (number) or text ("10G").
Status ReadSizeField(const Json& j, const char* key, uint64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return Ok();
  }
  if (it->is_string()) {
    auto parsed = ParseSize(it->get<std::string>());
    if (!parsed)
      return Err(
          ErrorCode::kInvalidArgument,
          std::string("field '") + key + "': " + parsed.error().message());
    *out = *parsed;
    return Ok();
  }
  return Err(ErrorCode::kInvalidArgument,
             std::string("field '") + key +
                 "' must be a size (bytes or text such as \"10G\")");
}

Result<std::string> PoolParam(const ApiRequest& r) {
  const std::string& pool = r.params.at("pool");
  TRY(ValidateStorageName("pool name", pool));
  return pool;
}

Result<std::string> VolumeParam(const ApiRequest& r) {
  const std::string& name = r.params.at("volume");
  TRY(ValidateStorageName("volume name", name));
  return name;
}

#define VIREO_TRY_RESPONSE(lhs, expr) \
  auto lhs = (expr);                  \
  if (!lhs) return ErrorResponse(lhs.error())

ApiResponse ListPools(HandlerContext* ctx, ApiRequest&) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(list, ctx->services.storage->List());
  return SyncResponse(Json(*list));
}

ApiResponse CreatePool(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  auto spec = [&]() -> Result<PoolSpec> {
    ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
    TRY(RejectUnknownFields(
        j, {"name", "type", "path", "vg", "thin_pool", "quota"}));
    PoolSpec s;
    TRY(ReadStr(j, "name", &s.name));
    TRY(ReadStr(j, "type", &s.type));
    TRY(ReadStr(j, "path", &s.path));
    TRY(ReadStr(j, "vg", &s.vg));
    TRY(ReadStr(j, "thin_pool", &s.thin_pool));
    TRY(ReadSizeField(j, "quota", &s.quota_bytes));
    if (s.name.empty())
      return Err(ErrorCode::kInvalidArgument, "missing field 'name'");
    if (s.type.empty()) s.type = "dir";
    return s;
  }();
  if (!spec) return ErrorResponse(spec.error());
  VIREO_TRY_RESPONSE(pool, ctx->services.storage->Create(*spec));
  return SyncResponse(*pool, 201);
}

ApiResponse GetPool(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  VIREO_TRY_RESPONSE(info, ctx->services.storage->Show(*pool));
  return SyncResponse(*info);
}

ApiResponse DeletePool(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  VIREO_TRY_RESPONSE(done, ctx->services.storage->Delete(*pool));
  return SyncResponse(Json::object());
}

ApiResponse ListAllVolumes(HandlerContext* ctx, ApiRequest&) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(list, ctx->services.volumes->List(""));
  return SyncResponse(Json(*list));
}

ApiResponse ListVolumes(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  VIREO_TRY_RESPONSE(list, ctx->services.volumes->List(*pool));
  return SyncResponse(Json(*list));
}

ApiResponse CreateVolume(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  std::string name;
  uint64_t size = 0;
  auto parsed = [&]() -> Status {
    ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
    TRY(RejectUnknownFields(j, {"name", "size"}));
    TRY(ReadStr(j, "name", &name));
    TRY(ReadSizeField(j, "size", &size));
    if (name.empty())
      return Err(ErrorCode::kInvalidArgument, "missing field 'name'");
    if (size == 0)
      return Err(ErrorCode::kInvalidArgument, "missing field 'size'");
    return Ok();
  }();
  if (!parsed) return ErrorResponse(parsed.error());
  VIREO_TRY_RESPONSE(volume, ctx->services.volumes->Create(*pool, name, size));
  return SyncResponse(*volume, 201);
}

ApiResponse GetVolume(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  VIREO_TRY_RESPONSE(name, VolumeParam(request));
  VIREO_TRY_RESPONSE(volume, ctx->services.volumes->Get(*pool, *name));
  return SyncResponse(*volume);
}

ApiResponse DeleteVolume(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  VIREO_TRY_RESPONSE(name, VolumeParam(request));
  VIREO_TRY_RESPONSE(done, ctx->services.volumes->Delete(*pool, *name));
  return SyncResponse(Json::object());
}

// POST .../attach and .../detach: {"instance": "vm1"}.
ApiResponse AttachOrDetach(HandlerContext* ctx, ApiRequest& request,
                           bool attach) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  VIREO_TRY_RESPONSE(name, VolumeParam(request));
  std::string instance;
  auto parsed = [&]() -> Status {
    ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
    TRY(RejectUnknownFields(j, {"instance"}));
    TRY(ReadStr(j, "instance", &instance));
    if (instance.empty())
      return Err(ErrorCode::kInvalidArgument, "missing field 'instance'");
    return ValidateInstanceName(instance);
  }();
  if (!parsed) return ErrorResponse(parsed.error());
  auto op = attach ? ctx->services.volumes->BeginAttach(*pool, *name, instance)
                   : ctx->services.volumes->BeginDetach(*pool, *name, instance);
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

ApiResponse Attach(HandlerContext* ctx, ApiRequest& request) {
  return AttachOrDetach(ctx, request, true);
}

ApiResponse Detach(HandlerContext* ctx, ApiRequest& request) {
  return AttachOrDetach(ctx, request, false);
}

// POST .../resize: {"size": "2G"}.
ApiResponse Resize(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(ok, Unavailable(ctx));
  VIREO_TRY_RESPONSE(pool, PoolParam(request));
  VIREO_TRY_RESPONSE(name, VolumeParam(request));
  uint64_t size = 0;
  auto parsed = [&]() -> Status {
    ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
    TRY(RejectUnknownFields(j, {"size"}));
    TRY(ReadSizeField(j, "size", &size));
    if (size == 0)
      return Err(ErrorCode::kInvalidArgument, "missing field 'size'");
    return Ok();
  }();
  if (!parsed) return ErrorResponse(parsed.error());
  VIREO_TRY_RESPONSE(op,
                     ctx->services.volumes->BeginResize(*pool, *name, size));
  return AsyncResponse(*op);
}

#undef VIREO_TRY_RESPONSE

}  // namespace

void RegisterStorageRoutes(Router& router, HandlerContext* ctx) {
  router.Add("GET", "/1.0/storage-pools", Bind(ctx, ListPools));
  router.Add("POST", "/1.0/storage-pools", Bind(ctx, CreatePool));
  router.Add("GET", "/1.0/storage-pools/{pool}", Bind(ctx, GetPool));
  router.Add("DELETE", "/1.0/storage-pools/{pool}", Bind(ctx, DeletePool));
  router.Add("GET", "/1.0/volumes", Bind(ctx, ListAllVolumes));
  router.Add("GET", "/1.0/storage-pools/{pool}/volumes",
             Bind(ctx, ListVolumes));
  router.Add("POST", "/1.0/storage-pools/{pool}/volumes",
             Bind(ctx, CreateVolume));
  router.Add("GET", "/1.0/storage-pools/{pool}/volumes/{volume}",
             Bind(ctx, GetVolume));
  router.Add("DELETE", "/1.0/storage-pools/{pool}/volumes/{volume}",
             Bind(ctx, DeleteVolume));
  router.Add("POST", "/1.0/storage-pools/{pool}/volumes/{volume}/attach",
             Bind(ctx, Attach));
  router.Add("POST", "/1.0/storage-pools/{pool}/volumes/{volume}/detach",
             Bind(ctx, Detach));
  router.Add("POST", "/1.0/storage-pools/{pool}/volumes/{volume}/resize",
             Bind(ctx, Resize));
}

}  // namespace vireo
