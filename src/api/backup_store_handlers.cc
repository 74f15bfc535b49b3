// /1.0/backup-stores: backup stores, their backups and maintenance.

#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"
#include "core/backup_store_service.h"

namespace vireo {

namespace {

#define VIREO_TRY_RESPONSE(lhs, expr) \
  auto lhs = (expr);                  \
  if (!lhs) return ErrorResponse(lhs.error())

Result<BackupStoreService*> Service(const HandlerContext* ctx) {
  if (!ctx->services.backup_stores)
    return Err(ErrorCode::kUnavailable, "backup stores are not configured");
  return ctx->services.backup_stores;
}

Status ReadString(const Json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_string())
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' must be a string");
  *out = it->get<std::string>();
  return Ok();
}

Status ReadCount(const Json& j, const char* key, int* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
      it->get<int64_t>() > 1'000'000)
    return Err(
        ErrorCode::kInvalidArgument,
        std::string("field '") + key + "' must be a non-negative integer");
  *out = static_cast<int>(it->get<int64_t>());
  return Ok();
}

Result<std::string> StoreParam(const ApiRequest& r) {
  const std::string& store = r.params.at("store");
  TRY(ValidateBackupStoreName(store));
  return store;
}

ApiResponse ListStores(HandlerContext* ctx, ApiRequest&) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(list, (*svc)->List());
  return SyncResponse(Json(*list));
}

ApiResponse CreateStore(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  auto spec = [&]() -> Result<BackupStoreSpec> {
    ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
    TRY(RejectUnknownFields(j, {"name", "path", "encrypt_key_file"}));
    BackupStoreSpec s;
    TRY(ReadString(j, "name", &s.name));
    TRY(ReadString(j, "path", &s.path));
    TRY(ReadString(j, "encrypt_key_file", &s.encrypt_key_file));
    if (s.name.empty())
      return Err(ErrorCode::kInvalidArgument, "missing field 'name'");
    if (s.path.empty())
      return Err(ErrorCode::kInvalidArgument, "missing field 'path'");
    return s;
  }();
  if (!spec) return ErrorResponse(spec.error());
  VIREO_TRY_RESPONSE(info, (*svc)->Create(*spec));
  return SyncResponse(*info, 201);
}

ApiResponse GetStore(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(info, (*svc)->Info(*store));
  return SyncResponse(*info);
}

ApiResponse DeleteStore(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(done, (*svc)->Delete(*store));
  return SyncResponse(Json::object());
}

ApiResponse ListBackups(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  std::string instance;
  if (auto it = request.query.find("instance"); it != request.query.end())
    instance = it->second;
  VIREO_TRY_RESPONSE(list, (*svc)->ListBackups(*store, instance));
  return SyncResponse(Json(*list));
}

ApiResponse GetBackup(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(info, (*svc)->GetBackup(*store, request.params.at("id")));
  return SyncResponse(*info);
}

ApiResponse DeleteBackup(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(done,
                     (*svc)->DeleteBackup(*store, request.params.at("id")));
  return SyncResponse(Json::object());
}

// Bodies of verify and gc are empty or {}.
Status EmptyBody(const ApiRequest& request) {
  if (request.body.empty()) return Ok();
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
  return RejectUnknownFields(j, {});
}

ApiResponse Verify(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(body, EmptyBody(request));
  VIREO_TRY_RESPONSE(op, (*svc)->BeginVerify(*store));
  return AsyncResponse(*op);
}

ApiResponse Gc(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(body, EmptyBody(request));
  VIREO_TRY_RESPONSE(op, (*svc)->BeginGc(*store));
  return AsyncResponse(*op);
}

ApiResponse Prune(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  auto policy = [&]() -> Result<backup::PrunePolicy> {
    ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
    TRY(RejectUnknownFields(j, {"instance", "keep_last", "keep_daily",
                                "keep_weekly", "keep_monthly", "dry_run"}));
    backup::PrunePolicy p;
    TRY(ReadString(j, "instance", &p.instance));
    TRY(ReadCount(j, "keep_last", &p.keep_last));
    TRY(ReadCount(j, "keep_daily", &p.keep_daily));
    TRY(ReadCount(j, "keep_weekly", &p.keep_weekly));
    TRY(ReadCount(j, "keep_monthly", &p.keep_monthly));
    if (auto it = j.find("dry_run"); it != j.end() && !it->is_null()) {
      if (!it->is_boolean())
        return Err(ErrorCode::kInvalidArgument,
                   "field 'dry_run' must be a boolean");
      p.dry_run = it->get<bool>();
    }
    return p;
  }();
  if (!policy) return ErrorResponse(policy.error());
  VIREO_TRY_RESPONSE(op, (*svc)->BeginPrune(*store, *policy));
  return AsyncResponse(*op);
}

Result<std::string> FileField(const ApiRequest& request) {
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
  TRY(RejectUnknownFields(j, {"file"}));
  std::string file;
  TRY(ReadString(j, "file", &file));
  if (file.empty())
    return Err(ErrorCode::kInvalidArgument, "missing field 'file'");
  return file;
}

ApiResponse Export(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(file, FileField(request));
  VIREO_TRY_RESPONSE(
      op, (*svc)->BeginExport(*store, request.params.at("id"), *file));
  return AsyncResponse(*op);
}

ApiResponse Import(HandlerContext* ctx, ApiRequest& request) {
  VIREO_TRY_RESPONSE(svc, Service(ctx));
  VIREO_TRY_RESPONSE(store, StoreParam(request));
  VIREO_TRY_RESPONSE(file, FileField(request));
  VIREO_TRY_RESPONSE(op, (*svc)->BeginImport(*store, *file));
  return AsyncResponse(*op);
}

#undef VIREO_TRY_RESPONSE

}  // namespace

void RegisterBackupStoreRoutes(Router& router, HandlerContext* ctx) {
  router.Add("GET", "/1.0/backup-stores", Bind(ctx, ListStores));
  router.Add("POST", "/1.0/backup-stores", Bind(ctx, CreateStore));
  router.Add("GET", "/1.0/backup-stores/{store}", Bind(ctx, GetStore));
  router.Add("DELETE", "/1.0/backup-stores/{store}", Bind(ctx, DeleteStore));
  router.Add("GET", "/1.0/backup-stores/{store}/backups",
             Bind(ctx, ListBackups));
  router.Add("GET", "/1.0/backup-stores/{store}/backups/{id}",
             Bind(ctx, GetBackup));
  router.Add("DELETE", "/1.0/backup-stores/{store}/backups/{id}",
             Bind(ctx, DeleteBackup));
  router.Add("POST", "/1.0/backup-stores/{store}/backups/{id}/export",
             Bind(ctx, Export));
  router.Add("POST", "/1.0/backup-stores/{store}/verify", Bind(ctx, Verify));
  router.Add("POST", "/1.0/backup-stores/{store}/prune", Bind(ctx, Prune));
  router.Add("POST", "/1.0/backup-stores/{store}/gc", Bind(ctx, Gc));
  router.Add("POST", "/1.0/backup-stores/{store}/import", Bind(ctx, Import));
}

}  // namespace vireo
