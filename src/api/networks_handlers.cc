// /1.0/networks: managed networks, their reservations and port forwards.
#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"
#include "network/network_service.h"

namespace vireo {

namespace {

Result<NetworkService*> Networks(HandlerContext* ctx) {
  if (!ctx->services.networks)
    return Err(ErrorCode::kFailedPrecondition,
               "managed networks are not available on this server");
  return ctx->services.networks;
}

Result<std::string> Str(const Json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      return Err(ErrorCode::kInvalidArgument,
                 std::string("field '") + key + "' is required");
    return std::string();
  }
  if (!it->is_string())
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

Result<bool> Bool(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean())
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' must be a boolean");
  return it->get<bool>();
}

ApiResponse Reply(const Result<Json>& r, unsigned status = 200) {
  if (!r) return ErrorResponse(r.error());
  return SyncResponse(*r, status);
}

Result<Json> DoCreate(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(NetworkService * svc, Networks(ctx));
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
  TRY(RejectUnknownFields(j, {"name", "subnet", "nat", "isolated"}));
  NetworkCreateRequest r;
  ASSIGN_OR_RETURN(r.name, Str(j, "name", true));
  ASSIGN_OR_RETURN(r.subnet, Str(j, "subnet", true));
  ASSIGN_OR_RETURN(r.nat, Bool(j, "nat"));
  ASSIGN_OR_RETURN(r.isolated, Bool(j, "isolated"));
  return svc->CreateNetwork(r);
}

Result<Json> DoList(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(NetworkService * svc, Networks(ctx));
  ASSIGN_OR_RETURN(int64_t recursion,
                   QueryNonNegative(request, "recursion", 0, 2));
  ASSIGN_OR_RETURN(Json all, svc->List());
  if (recursion > 0) return all;
  Json urls = Json::array();
  for (const auto& n : all)
    urls.push_back("/1.0/networks/" + n.at("name").get<std::string>());
  return urls;
}

Result<Json> DoDelete(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(NetworkService * svc, Networks(ctx));
  TRY(svc->Delete(request.params.at("name")));
  return Json::object();
}

Result<Json> DoReserve(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(NetworkService * svc, Networks(ctx));
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
  TRY(RejectUnknownFields(j, {"mac", "ip"}));
  ASSIGN_OR_RETURN(std::string mac, Str(j, "mac", true));
  ASSIGN_OR_RETURN(std::string ip, Str(j, "ip", true));
  return svc->AddReservation(request.params.at("name"), mac, ip);
}

Result<Json> DoUnreserve(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(NetworkService * svc, Networks(ctx));
  return svc->RemoveReservation(request.params.at("name"),
                                request.params.at("mac"));
}

Result<Json> DoAddForward(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(NetworkService * svc, Networks(ctx));
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(request.body));
  TRY(RejectUnknownFields(j, {"host_port", "instance", "port", "proto"}));
  PortForward f;
  ASSIGN_OR_RETURN(f.host_port,
                   ParsePort(j.value("host_port", Json()), "host_port"));
  ASSIGN_OR_RETURN(f.port, ParsePort(j.value("port", Json()), "port"));
  ASSIGN_OR_RETURN(f.instance, Str(j, "instance", true));
  ASSIGN_OR_RETURN(std::string proto, Str(j, "proto", false));
  if (!proto.empty()) f.proto = proto;
  return svc->AddForward(request.params.at("name"), f);
}

Result<Json> DoRemoveForward(HandlerContext* ctx, const ApiRequest& request) {
  ASSIGN_OR_RETURN(NetworkService * svc, Networks(ctx));
  auto proto = request.query.count("proto") ? request.query.at("proto")
                                            : std::string("tcp");
  ASSIGN_OR_RETURN(int port, ParsePort(Json::parse(request.params.at("port"),
                                                   nullptr, false),
                                       "host port"));
  return svc->RemoveForward(request.params.at("name"), proto, port);
}

template <Result<Json> (*F)(HandlerContext*, const ApiRequest&),
          unsigned kStatus = 200>
ApiResponse Wrap(HandlerContext* ctx, ApiRequest& request) {
  return Reply(F(ctx, request), kStatus);
}

}  // namespace

void RegisterNetworkRoutes(Router& router, HandlerContext* ctx) {
  router.Add("GET", "/1.0/networks", Bind(ctx, Wrap<DoList>));
  router.Add("POST", "/1.0/networks", Bind(ctx, Wrap<DoCreate, 201>));
  router.Add("GET", "/1.0/networks/{name}",
             Bind(ctx, [](HandlerContext* c, ApiRequest& r) {
               auto svc = Networks(c);
               if (!svc) return ErrorResponse(svc.error());
               return Reply((*svc)->Get(r.params.at("name")));
             }));
  router.Add("DELETE", "/1.0/networks/{name}", Bind(ctx, Wrap<DoDelete>));
  router.Add("POST", "/1.0/networks/{name}/reservations",
             Bind(ctx, Wrap<DoReserve>));
  router.Add("DELETE", "/1.0/networks/{name}/reservations/{mac}",
             Bind(ctx, Wrap<DoUnreserve>));
  router.Add("POST", "/1.0/networks/{name}/forwards",
             Bind(ctx, Wrap<DoAddForward>));
  router.Add("DELETE", "/1.0/networks/{name}/forwards/{port}",
             Bind(ctx, Wrap<DoRemoveForward>));
}

Json NicsJson(HandlerContext* ctx, const Instance& instance) {
  Json nics = Json::array();
  for (const auto& nic : instance.config.nics) {
    Json j = {{"name", nic.name}, {"type", nic.type}, {"mac", nic.mac}};
    if (nic.type == "network") {
      j["network"] = nic.network;
      j["ipv4"] = ctx->services.networks
                      ? ctx->services.networks->AddressOf(nic)
                      : std::string();
    }
    nics.push_back(std::move(j));
  }
  return nics;
}

}  // namespace vireo
