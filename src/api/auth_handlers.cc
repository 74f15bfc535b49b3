// /1.0/auth (login, logout, session), /1.0/users, and POST
// /1.0/images/upload, whose body the connection already streamed to a file.

#include "api/handlers.h"
#include "api/instance_request.h"
#include "api/responses.h"

namespace vireo {

namespace {

constexpr int64_t kCookieMaxAge = 7 * 24 * 3600;

std::string SessionCookie(const std::string& value, int64_t max_age) {
  return std::string(kSessionCookie) + "=" + value +
         "; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=" +
         std::to_string(max_age);
}

Result<std::string> StringField(const Json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      return Err(ErrorCode::kInvalidArgument,
                 "missing field '" + std::string(key) + "'");
    return std::string();
  }
  if (!it->is_string())
    return Err(ErrorCode::kInvalidArgument,
               "field '" + std::string(key) + "' must be a string");
  return it->get<std::string>();
}

ApiResponse NoUsers() {
  return ErrorResponse(Error(ErrorCode::kUnavailable,
                             "users are not configured on this server"));
}

// The user name of a session identity ("user:<name>"), else "".
std::string SessionUser(const ApiRequest& request) {
  constexpr std::string_view kPrefix = "user:";
  if (request.identity.rfind(kPrefix, 0) != 0) return "";
  return request.identity.substr(kPrefix.size());
}

ApiResponse Login(HandlerContext* ctx, ApiRequest& request) {
  SessionService* sessions = ctx->services.sessions;
  if (sessions == nullptr) return NoUsers();
  auto j = ParseJsonObject(request.body);
  if (!j) return ErrorResponse(j.error());
  if (auto st = RejectUnknownFields(*j, {"username", "password"}); !st)
    return ErrorResponse(st.error());
  auto user = StringField(*j, "username", true);
  if (!user) return ErrorResponse(user.error());
  auto password = StringField(*j, "password", true);
  if (!password) return ErrorResponse(password.error());
  auto session = sessions->Login(*user, *password);
  if (!session) {
    if (session.error().code() == ErrorCode::kResourceExhausted) {
      ApiResponse r =
          ErrorResponse(429, "too_many_requests", session.error().message());
      r.headers["Retry-After"] = std::to_string(sessions->RetryAfter(*user));
      return r;
    }
    return ErrorResponse(session.error());
  }
  ApiResponse r = SyncResponse({{"username", session->user},
                                {"role", session->role},
                                {"expires_at", session->expires_at}});
  r.headers["Set-Cookie"] = SessionCookie(session->token, kCookieMaxAge);
  r.headers["Cache-Control"] = "no-store";
  return r;
}

ApiResponse Logout(HandlerContext* ctx, ApiRequest& request) {
  if (!request.session_token.empty() && ctx->services.sessions != nullptr) {
    if (auto st = ctx->services.sessions->Logout(request.session_token); !st)
      return ErrorResponse(st.error());
  }
  ApiResponse r = SyncResponse(Json::object());
  r.headers["Set-Cookie"] = SessionCookie("", 0);
  return r;
}

ApiResponse GetSession(HandlerContext*, ApiRequest& request) {
  const std::string user = SessionUser(request);
  const bool cookie = !request.session_token.empty();
  const bool token = request.identity.rfind("token:", 0) == 0;
  return SyncResponse({{"username", cookie ? user : request.identity},
                       {"role", request.role},
                       {"method", cookie  ? "session"
                                  : token ? "token"
                                          : "local"}});
}

ApiResponse ListUsers(HandlerContext* ctx, ApiRequest&) {
  if (ctx->services.users == nullptr) return NoUsers();
  auto users = ctx->services.users->List();
  if (!users) return ErrorResponse(users.error());
  Json out = Json::array();
  for (const auto& u : *users) out.push_back(UserJson(u));
  return SyncResponse(std::move(out));
}

ApiResponse GetUser(HandlerContext* ctx, ApiRequest& request) {
  if (ctx->services.users == nullptr) return NoUsers();
  auto user = ctx->services.users->Get(request.params.at("name"));
  if (!user) return ErrorResponse(user.error());
  return SyncResponse(UserJson(*user));
}

ApiResponse CreateUser(HandlerContext* ctx, ApiRequest& request) {
  if (ctx->services.users == nullptr) return NoUsers();
  auto j = ParseJsonObject(request.body);
  if (!j) return ErrorResponse(j.error());
  if (auto st = RejectUnknownFields(*j, {"name", "password", "role"}); !st)
    return ErrorResponse(st.error());
  auto name = StringField(*j, "name", true);
  if (!name) return ErrorResponse(name.error());
  auto password = StringField(*j, "password", true);
  if (!password) return ErrorResponse(password.error());
  auto role = StringField(*j, "role", false);
  if (!role) return ErrorResponse(role.error());
  auto user = ctx->services.users->Create(
      *name, *password, role->empty() ? std::string("user") : *role);
  if (!user) return ErrorResponse(user.error());
  return SyncResponse(UserJson(*user), 201);
}

ApiResponse DeleteUser(HandlerContext* ctx, ApiRequest& request) {
  if (ctx->services.users == nullptr) return NoUsers();
  const std::string& name = request.params.at("name");
  if (auto st = ctx->services.users->Delete(name); !st)
    return ErrorResponse(st.error());
  if (ctx->services.sessions != nullptr) {
    if (auto st = ctx->services.sessions->RevokeUser(name); !st)
      return ErrorResponse(st.error());
  }
  return SyncResponse(Json::object());
}

ApiResponse SetPassword(HandlerContext* ctx, ApiRequest& request) {
  if (ctx->services.users == nullptr) return NoUsers();
  auto j = ParseJsonObject(request.body);
  if (!j) return ErrorResponse(j.error());
  if (auto st = RejectUnknownFields(*j, {"password"}); !st)
    return ErrorResponse(st.error());
  auto password = StringField(*j, "password", true);
  if (!password) return ErrorResponse(password.error());
  const std::string& name = request.params.at("name");
  if (auto st = ctx->services.users->SetPassword(name, *password); !st)
    return ErrorResponse(st.error());
  // A new password ends the user's other sessions; the caller's own
  // session (an admin changing their own password) stays.
  if (ctx->services.sessions != nullptr) {
    if (auto st =
            ctx->services.sessions->RevokeUser(name, request.session_token);
        !st)
      return ErrorResponse(st.error());
  }
  return SyncResponse(Json::object());
}

ApiResponse Upload(HandlerContext* ctx, ApiRequest& request) {
  if (ctx->services.images == nullptr)
    return ErrorResponse(
        Error(ErrorCode::kUnavailable, "the image store is not available"));
  if (request.upload_file.empty())
    return ErrorResponse(400, "invalid_argument",
                         "send the image file as the request body");
  ImageImportRequest r;
  auto name = request.query.find("name");
  if (name == request.query.end() || name->second.empty())
    return ErrorResponse(400, "invalid_argument",
                         "missing query parameter 'name'");
  for (const auto& [key, value] : request.query) {
    if (key != "name" && key != "os" && key != "description")
      return ErrorResponse(400, "invalid_argument",
                           "unknown query parameter '" + key + "'");
  }
  r.aliases.push_back(name->second);
  if (auto os = request.query.find("os"); os != request.query.end())
    r.os = os->second;
  if (auto d = request.query.find("description"); d != request.query.end())
    r.description = d->second;
  r.source = request.upload_file;
  r.remove_source = true;
  auto op = ctx->services.images->BeginImport(std::move(r));
  if (!op) return ErrorResponse(op.error());
  return AsyncResponse(*op);
}

}  // namespace

void RegisterAuthRoutes(Router& router, HandlerContext* ctx) {
  router.Add("POST", "/1.0/auth/login", Bind(ctx, Login));
  router.Add("POST", "/1.0/auth/logout", Bind(ctx, Logout));
  router.Add("GET", "/1.0/auth/session", Bind(ctx, GetSession));
  router.Add("GET", "/1.0/users", Bind(ctx, ListUsers));
  router.Add("POST", "/1.0/users", Bind(ctx, CreateUser));
  router.Add("GET", "/1.0/users/{name}", Bind(ctx, GetUser));
  router.Add("DELETE", "/1.0/users/{name}", Bind(ctx, DeleteUser));
  router.Add("PUT", "/1.0/users/{name}/password", Bind(ctx, SetPassword));
  router.Add("POST", "/1.0/images/upload", Bind(ctx, Upload));
}

}  // namespace vireo
