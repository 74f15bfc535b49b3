// Backup jobs: POST /1.0/instances/{name}/backups and
// POST /1.0/backup-stores/{store}/backups/{id}/restore. The store routes
// themselves are in backup_store_handlers.cc.

#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"
#include "core/backup_service.h"
#include "core/validation.h"

namespace vireo {

namespace {

Result<Json> BodyObject(const ApiRequest& request) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos)
    return Json::object();
  return ParseJsonObject(request.body);
}

Result<std::string> OptionalString(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

ApiResponse CreateBackup(HandlerContext* ctx, ApiRequest& request) {
  auto op = [&]() -> Result<Operation> {
    if (!ctx->services.backups)
      return Err(ErrorCode::kUnavailable, "backups are not configured");
    ASSIGN_OR_RETURN(Json body, BodyObject(request));
    TRY(RejectUnknownFields(body, {"store"}));
    ASSIGN_OR_RETURN(std::string store, OptionalString(body, "store"));
    return ctx->services.backups->Start(request.params.at("name"), store);
  }();
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

ApiResponse RestoreBackup(HandlerContext* ctx, ApiRequest& request) {
  auto op = [&]() -> Result<Operation> {
    if (!ctx->services.backups)
      return Err(ErrorCode::kUnavailable, "backups are not configured");
    ASSIGN_OR_RETURN(Json body, BodyObject(request));
    TRY(RejectUnknownFields(body, {"name"}));
    ASSIGN_OR_RETURN(std::string name, OptionalString(body, "name"));
    if (!name.empty()) TRY(ValidateInstanceName(name));
    return ctx->services.backups->Restore(request.params.at("store"),
                                          request.params.at("id"), name);
  }();
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

}  // namespace

void RegisterBackupJobRoutes(Router& router, HandlerContext* ctx) {
  router.Add("POST", "/1.0/instances/{name}/backups", Bind(ctx, CreateBackup));
  router.Add("POST", "/1.0/backup-stores/{store}/backups/{id}/restore",
             Bind(ctx, RestoreBackup));
}

}  // namespace vireo
