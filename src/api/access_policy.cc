#include "api/access_policy.h"

#include <vector>

#include "api/router.h"

namespace vireo {

namespace {

bool IsRead(std::string_view method) {
  return method == "GET" || method == "HEAD";
}

bool Matches(const std::vector<std::string>& segs,
             std::initializer_list<std::string_view> pattern) {
  if (segs.size() != pattern.size()) return false;
  size_t i = 0;
  for (std::string_view p : pattern) {
    if (p != "*" && segs[i] != p) return false;
    ++i;
  }
  return true;
}

}  // namespace

bool IsApiPath(std::string_view path) {
  return path == "/1.0" || path.rfind("/1.0/", 0) == 0;
}

bool AllowsAnonymous(std::string_view method, std::string_view path) {
  const auto segs = SplitPath(path);
  if (method == "GET" && Matches(segs, {"1.0"})) return true;
  if (method == "POST" && (Matches(segs, {"1.0", "auth", "login"}) ||
                           Matches(segs, {"1.0", "auth", "logout"})))
    return true;
  return method == "GET" &&
         Matches(segs, {"1.0", "operations", "*", "websocket"});
}

Status CheckAccess(std::string_view method, std::string_view path,
                   std::string_view role, bool via_cookie, bool csrf_header) {
  if (via_cookie && !IsRead(method) && !csrf_header) {
    return Err(ErrorCode::kPermissionDenied,
               "cookie-authenticated requests that change state need the "
               "header 'X-Vireo-Request: 1'");
  }
  if (role == "admin") return Ok();
  const auto segs = SplitPath(path);
  if (role == "user") {
    const bool admin_only =
        segs.size() >= 2 && (segs[1] == "users" || segs[1] == "tokens");
    if (IsRead(method) && !admin_only) return Ok();
    if (method == "POST" &&
        (Matches(segs, {"1.0", "instances", "*", "console"}) ||
         Matches(segs, {"1.0", "auth", "logout"})))
      return Ok();
  }
  return Err(ErrorCode::kPermissionDenied,
             "role '" + std::string(role) + "' may not " + std::string(method) +
                 " " + std::string(path));
}

}  // namespace vireo
