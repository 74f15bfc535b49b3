// Instance options (PATCH /1.0/instances/{name}), snapshots and copies.
#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"
#include "core/validation.h"

namespace vireo {

namespace {

Result<SnapshotService*> Snapshots(HandlerContext* ctx) {
  if (!ctx->services.snapshots)
    return Err(ErrorCode::kUnavailable, "snapshots are not available");
  return ctx->services.snapshots;
}

Result<std::string> Name(const ApiRequest& request) {
  const std::string& name = request.params.at("name");
  TRY(ValidateInstanceName(name));
  return name;
}

Result<Json> Body(const ApiRequest& request,
                  std::initializer_list<std::string_view> fields) {
  if (request.body.empty()) return Json::object();
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
  TRY(RejectUnknownFields(j, fields));
  return j;
}

Result<std::string> String(const Json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      return Err(ErrorCode::kInvalidArgument,
                 std::string("missing field '") + key + "'");
    return std::string();
  }
  if (!it->is_string())
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

Result<bool> Boolean(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean())
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' must be a boolean");
  return it->get<bool>();
}

ApiResponse Reply(const Result<Json>& r) {
  if (!r) return ErrorResponse(r.error());
  return SyncResponse(*r);
}

ApiResponse ReplyOp(const Result<Operation>& op) {
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

Result<Json> DoPatch(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(std::string name, Name(request));
  ASSIGN_OR_RETURN(Json j, Body(request, {"options"}));
  std::map<std::string, std::string> patch;
  if (auto it = j.find("options"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      return Err(ErrorCode::kInvalidArgument,
                 "field 'options' must be an object of strings");
    for (auto kv = it->begin(); kv != it->end(); ++kv) {
      if (!kv->is_string())
        return Err(ErrorCode::kInvalidArgument,
                   "option '" + kv.key() + "' must be a string (\"\" unsets)");
      patch[kv.key()] = kv->get<std::string>();
    }
  }
  ASSIGN_OR_RETURN(Instance inst,
                   ctx->services.instances->PatchOptions(name, patch));
  Json out = ToJson(inst);
  out["options"] = inst.config.options;
  return out;
}

Result<Json> DoList(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(SnapshotService * svc, Snapshots(ctx));
  ASSIGN_OR_RETURN(std::string name, Name(request));
  ASSIGN_OR_RETURN(int64_t recursion,
                   QueryNonNegative(request, "recursion", 0, 2));
  ASSIGN_OR_RETURN(auto listing, svc->List(name));
  Json out = Json::array();
  for (const auto& r : listing.snapshots) {
    if (recursion > 0)
      out.push_back(ToApiJson(r, listing.current));
    else
      out.push_back("/1.0/instances/" + name + "/snapshots/" + r.name);
  }
  return out;
}

Result<Json> DoGet(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(SnapshotService * svc, Snapshots(ctx));
  ASSIGN_OR_RETURN(std::string name, Name(request));
  ASSIGN_OR_RETURN(auto r, svc->Get(name, request.params.at("snap")));
  ASSIGN_OR_RETURN(auto listing, svc->List(name));
  return ToApiJson(r, listing.current);
}

Result<Operation> DoCreate(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(SnapshotService * svc, Snapshots(ctx));
  ASSIGN_OR_RETURN(std::string name, Name(request));
  ASSIGN_OR_RETURN(Json j, Body(request, {"name", "memory"}));
  ASSIGN_OR_RETURN(std::string snap, String(j, "name", true));
  ASSIGN_OR_RETURN(bool memory, Boolean(j, "memory"));
  return svc->BeginCreate(name, snap, memory);
}

Result<Operation> DoRestore(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(SnapshotService * svc, Snapshots(ctx));
  ASSIGN_OR_RETURN(std::string name, Name(request));
  ASSIGN_OR_RETURN(Json j, Body(request, {"confirm"}));
  ASSIGN_OR_RETURN(bool confirm, Boolean(j, "confirm"));
  return svc->BeginRestore(name, request.params.at("snap"), confirm);
}

Result<Operation> DoDelete(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(SnapshotService * svc, Snapshots(ctx));
  ASSIGN_OR_RETURN(std::string name, Name(request));
  return svc->BeginDelete(name, request.params.at("snap"));
}

Result<Operation> DoCopy(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(SnapshotService * svc, Snapshots(ctx));
  ASSIGN_OR_RETURN(std::string name, Name(request));
  ASSIGN_OR_RETURN(Json j, Body(request, {"name", "snapshot"}));
  ASSIGN_OR_RETURN(std::string new_name, String(j, "name", true));
  ASSIGN_OR_RETURN(std::string snap, String(j, "snapshot", false));
  return svc->BeginCopy(name, snap, new_name);
}

}  // namespace

void RegisterSnapshotRoutes(Router& router, HandlerContext* ctx) {
  router.Add("PATCH", "/1.0/instances/{name}",
             [ctx](ApiRequest& r) { return Reply(DoPatch(ctx, r)); });
  router.Add("GET", "/1.0/instances/{name}/snapshots",
             [ctx](ApiRequest& r) { return Reply(DoList(ctx, r)); });
  router.Add("POST", "/1.0/instances/{name}/snapshots",
             [ctx](ApiRequest& r) { return ReplyOp(DoCreate(ctx, r)); });
  router.Add("GET", "/1.0/instances/{name}/snapshots/{snap}",
             [ctx](ApiRequest& r) { return Reply(DoGet(ctx, r)); });
  router.Add("DELETE", "/1.0/instances/{name}/snapshots/{snap}",
             [ctx](ApiRequest& r) { return ReplyOp(DoDelete(ctx, r)); });
  router.Add("POST", "/1.0/instances/{name}/snapshots/{snap}/restore",
             [ctx](ApiRequest& r) { return ReplyOp(DoRestore(ctx, r)); });
  router.Add("POST", "/1.0/instances/{name}/copy",
             [ctx](ApiRequest& r) { return ReplyOp(DoCopy(ctx, r)); });
}

}  // namespace vireo
