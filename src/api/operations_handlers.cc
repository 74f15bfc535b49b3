#include <algorithm>
#include <chrono>

#include "api/handlers.h"
#include "api/responses.h"

namespace vireo {

namespace {

constexpr int64_t kDefaultWaitS = 60;
constexpr int64_t kMaxWaitS = 24 * 3600;
// Waits are sliced so that Stop() never has to wait for a long-poll.
constexpr std::chrono::milliseconds kWaitSlice{250};

ApiResponse ListOperations(HandlerContext* ctx, ApiRequest&) {
  Json out = Json::array();
  for (const Operation& op : ctx->services.operations->List())
    out.push_back(ToJson(op));
  return SyncResponse(std::move(out));
}

ApiResponse GetOperation(HandlerContext* ctx, ApiRequest& request) {
  auto op = ctx->services.operations->Get(request.params.at("id"));
  if (!op) return ErrorResponse(op.error());
  return SyncResponse(ToJson(*op));
}

ApiResponse WaitOperation(HandlerContext* ctx, ApiRequest& request) {
  auto timeout_s =
      QueryNonNegative(request, "timeout", kDefaultWaitS, kMaxWaitS);
  if (!timeout_s) return ErrorResponse(timeout_s.error());
  const std::string& id = request.params.at("id");
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(*timeout_s);
  while (true) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto slice =
        std::clamp(remaining, std::chrono::milliseconds(0), kWaitSlice);
    auto op = ctx->services.operations->Wait(id, slice);
    if (!op) return ErrorResponse(op.error());
    if (op->status != OperationStatus::kRunning || remaining <= kWaitSlice ||
        ctx->stopping.load()) {
      return SyncResponse(ToJson(*op));
    }
  }
}

}  // namespace

void RegisterOperationRoutes(Router& router, HandlerContext* ctx) {
  router.Add("GET", "/1.0/operations", Bind(ctx, ListOperations));
  router.Add("GET", "/1.0/operations/{id}", Bind(ctx, GetOperation));
  router.Add("GET", "/1.0/operations/{id}/wait", Bind(ctx, WaitOperation));
}

}  // namespace vireo
