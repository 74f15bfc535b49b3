#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"
#include "common/fd.h"
#include "core/validation.h"

namespace vireo {

namespace {

// Without ?tail, a huge serial log is cut to its end rather than sent whole.
constexpr int64_t kMaxConsoleBytes = 8 << 20;

Json InstanceJson(HandlerContext* ctx, const Instance& instance) {
  Json j = ToJson(instance);
  j["nics"] = NicsJson(ctx, instance);
  j["state"] = std::string(ToString(instance.status.state));
  j["cpus"] = instance.config.cpus;
  j["memory"] = instance.config.memory_bytes;
  j["options"] = instance.config.options;
  return j;
}

// Names from paths are checked here too, so a bad name is a 400 and never
// reaches the store or the file system.
Result<std::string> NameParam(const ApiRequest& request) {
  const std::string& name = request.params.at("name");
  TRY(ValidateInstanceName(name));
  return name;
}

// Reads at most the last max_bytes of a file; a missing file is empty (the
// instance never ran).
Result<std::string> ReadTail(const std::string& path, int64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::string();
    return ErrnoErr("open " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoErr("stat " + path);
  int64_t offset = st.st_size > max_bytes ? st.st_size - max_bytes : 0;
  std::string out;
  out.resize(static_cast<size_t>(st.st_size - offset));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd.get(), out.data() + done, out.size() - done,
                        offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoErr("read " + path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

ApiResponse ListInstances(HandlerContext* ctx, ApiRequest& request) {
  auto recursion = QueryNonNegative(request, "recursion", 0, 2);
  if (!recursion) return ErrorResponse(recursion.error());
  Json out = Json::array();
  if (*recursion == 0) {
    auto names = ctx->services.instances->ListNames();
    if (!names) return ErrorResponse(names.error());
    InstanceListCache& cache = ctx->list_cache;
    {
      std::lock_guard lock(cache.mu);
      if (cache.valid && cache.names == *names) {
        ApiResponse cached;
        cached.body = cache.body;
        return cached;
      }
    }
    for (const std::string& name : *names)
      out.push_back("/1.0/instances/" + name);
    ApiResponse response = SyncResponse(std::move(out));
    std::lock_guard lock(cache.mu);
    cache.names = std::move(*names);
    cache.body = response.body;
    cache.valid = true;
    return response;
  }
  auto list = ctx->services.instances->List();
  if (!list) return ErrorResponse(list.error());
  for (const Instance& instance : *list)
    out.push_back(InstanceJson(ctx, instance));
  return SyncResponse(std::move(out));
}

ApiResponse CreateInstance(HandlerContext* ctx, ApiRequest& request) {
  auto create = ParseCreateRequest(request.body);
  if (!create) return ErrorResponse(create.error());
  if (auto valid = ValidateInstanceName(create->name); !valid) {
    return ErrorResponse(valid.error());
  }
  auto op = ctx->services.instances->BeginCreate(*create);
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

ApiResponse GetInstance(HandlerContext* ctx, ApiRequest& request) {
  auto name = NameParam(request);
  if (!name) return ErrorResponse(name.error());
  auto instance = ctx->services.instances->Get(*name);
  if (!instance) return ErrorResponse(instance.error());
  return SyncResponse(InstanceJson(ctx, *instance));
}

ApiResponse DeleteInstance(HandlerContext* ctx, ApiRequest& request) {
  auto name = NameParam(request);
  if (!name) return ErrorResponse(name.error());
  auto force = QueryBool(request, "force", false);
  if (!force) return ErrorResponse(force.error());
  auto op = ctx->services.instances->BeginDelete(*name, *force);
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

ApiResponse GetState(HandlerContext* ctx, ApiRequest& request) {
  auto name = NameParam(request);
  if (!name) return ErrorResponse(name.error());
  auto instance = ctx->services.instances->Get(*name);
  if (!instance) return ErrorResponse(instance.error());
  return SyncResponse(ToJson(instance->status));
}

ApiResponse PutState(HandlerContext* ctx, ApiRequest& request) {
  auto name = NameParam(request);
  if (!name) return ErrorResponse(name.error());
  auto change = ParseStateChangeRequest(request.body);
  if (!change) return ErrorResponse(change.error());
  auto op = ctx->services.instances->BeginStateChange(
      *name, change->action, change->force, change->timeout_s);
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

ApiResponse Console(HandlerContext* ctx, ApiRequest& request) {
  auto name = NameParam(request);
  if (!name) return ErrorResponse(name.error());
  auto instance = ctx->services.instances->Get(*name);
  if (!instance) return ErrorResponse(instance.error());
  auto paths = ctx->services.instances->Paths(*name);
  if (!paths) return ErrorResponse(paths.error());

  if (!request.websocket_upgrade) {
    auto tail =
        QueryNonNegative(request, "tail", kMaxConsoleBytes, kMaxConsoleBytes);
    if (!tail) return ErrorResponse(tail.error());
    auto text = ReadTail(paths->console_log, *tail);
    if (!text) return ErrorResponse(text.error());
    ApiResponse response;
    response.content_type = "text/plain; charset=utf-8";
    response.body = std::move(*text);
    return response;
  }
  const InstanceState state = instance->status.state;
  if (state != InstanceState::kRunning && state != InstanceState::kPaused) {
    return ErrorResponse(Error(ErrorCode::kFailedPrecondition,
                               "instance '" + *name +
                                   "' is not running (state " +
                                   std::string(ToString(state)) + ")"));
  }
  if (!ctx->consoles.TryClaim(*name)) {
    return ErrorResponse(
        Error(ErrorCode::kFailedPrecondition,
              "the console of '" + *name + "' is already attached"));
  }
  ApiResponse response;
  response.upgrade = ApiResponse::Upgrade::kConsole;
  response.console_instance = *name;
  response.console_socket = paths->serial_socket;
  return response;
}

}  // namespace

bool ConsoleClaims::TryClaim(const std::string& instance) {
  std::lock_guard lock(mu_);
  return active_.insert(instance).second;
}

void ConsoleClaims::Release(const std::string& instance) {
  std::lock_guard lock(mu_);
  active_.erase(instance);
}

void RegisterInstanceRoutes(Router& router, HandlerContext* ctx) {
  router.Add("GET", "/1.0/instances", Bind(ctx, ListInstances));
  router.Add("POST", "/1.0/instances", Bind(ctx, CreateInstance));
  router.Add("GET", "/1.0/instances/{name}", Bind(ctx, GetInstance));
  router.Add("DELETE", "/1.0/instances/{name}", Bind(ctx, DeleteInstance));
  router.Add("GET", "/1.0/instances/{name}/state", Bind(ctx, GetState));
  router.Add("PUT", "/1.0/instances/{name}/state", Bind(ctx, PutState));
  router.Add("GET", "/1.0/instances/{name}/console", Bind(ctx, Console));
}

}  // namespace vireo
