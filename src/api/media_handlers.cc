// Install media of an instance: POST /1.0/instances/{name}/eject.

#include "api/handlers.h"
#include "api/responses.h"
#include "core/validation.h"

namespace vireo {

namespace {

ApiResponse Eject(HandlerContext* ctx, ApiRequest& request) {
  const std::string& name = request.params.at("name");
  if (auto valid = ValidateInstanceName(name); !valid)
    return ErrorResponse(valid.error());
  // The body is optional; nothing in it is understood yet.
  if (!request.body.empty() && request.body != "{}" && request.body != "null") {
    return ErrorResponse(Error(ErrorCode::kInvalidArgument,
                               "eject takes no request body fields"));
  }
  auto op = ctx->services.instances->BeginEject(name);
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

}  // namespace

void RegisterMediaRoutes(Router& router, HandlerContext* ctx) {
  router.Add("POST", "/1.0/instances/{name}/eject", Bind(ctx, Eject));
}

}  // namespace vireo
