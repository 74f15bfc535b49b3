#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo {

// Who may do what over HTTPS (docs/auth.md). Pure functions of the request
// line and the caller's role, so they are unit-tested without a server.

// "/1.0" and everything below it is the API; other paths are the web UI.
bool IsApiPath(std::string_view path);
// Requests served without credentials: GET /1.0 (minimal answer), login,
// logout (it only clears the cookie when there is no session) and console
// WebSockets, whose one-time secret is the credential.
bool AllowsAnonymous(std::string_view method, std::string_view path);
// Role and CSRF rules for an authenticated caller. role "admin": anything;
// role "user": reads (except users and tokens) and opening consoles. A
// cookie-authenticated request that changes state must carry
// "X-Vireo-Request: 1" (a cross-site form cannot set it). kPermissionDenied
// otherwise.
Status CheckAccess(std::string_view method, std::string_view path,
                   std::string_view role, bool via_cookie, bool csrf_header);

}  // namespace vireo
