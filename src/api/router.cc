#include "api/router.h"

#include <set>

#include "api/responses.h"

namespace vireo {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decoded path parameters become names and ids; a value that could walk the
// file system or smuggle a separator is refused whatever the core thinks.
bool SafeParam(const std::string& value) {
  if (value.empty() || value == "." || value == "..") return false;
  for (char c : value) {
    if (c == '/' || c == '\0') return false;
  }
  return true;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view text, bool form) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return Err(ErrorCode::kInvalidArgument,
                   "bad percent escape in '" + std::string(text) + "'");
      }
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return Err(ErrorCode::kInvalidArgument,
                   "bad percent escape in '" + std::string(text) + "'");
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && form) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Status ParseTarget(std::string_view target, std::string* path,
                   std::map<std::string, std::string>* query) {
  size_t q = target.find('?');
  *path = std::string(target.substr(0, q));
  query->clear();
  if (q == std::string_view::npos) return Ok();
  std::string_view rest = target.substr(q + 1);
  size_t hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view()
                                         : rest.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    ASSIGN_OR_RETURN(std::string key, PercentDecode(pair.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      ASSIGN_OR_RETURN(value, PercentDecode(pair.substr(eq + 1), true));
    }
    (*query)[key] = std::move(value);
  }
  return Ok();
}

void Router::Add(std::string method, std::string_view pattern,
                 Handler handler) {
  routes_.push_back(
      Route{std::move(method), SplitPath(pattern), std::move(handler)});
}

ApiResponse Router::Dispatch(ApiRequest& request) const {
  const std::vector<std::string> segments = SplitPath(request.path);
  std::set<std::string> allowed;
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    bool bad_param = false;
    for (size_t i = 0; i < segments.size() && match; ++i) {
      const std::string& want = route.segments[i];
      if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
        auto decoded = PercentDecode(segments[i]);
        if (!decoded || !SafeParam(*decoded)) {
          bad_param = true;
          params[want.substr(1, want.size() - 2)] = segments[i];
        } else {
          params[want.substr(1, want.size() - 2)] = std::move(*decoded);
        }
      } else if (want != segments[i]) {
        match = false;
      }
    }
    if (!match) continue;
    if (route.method != request.method) {
      allowed.insert(route.method);
      continue;
    }
    if (bad_param) {
      return ErrorResponse(400, "invalid_argument",
                           "invalid name or id in path '" + request.path + "'");
    }
    request.params = std::move(params);
    return route.handler(request);
  }
  if (!allowed.empty()) {
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    ApiResponse response = ErrorResponse(
        405, "invalid_argument",
        "method " + request.method + " not allowed on " + request.path);
    response.headers["Allow"] = allow;
    return response;
  }
  return ErrorResponse(404, "not_found", "no such endpoint: " + request.path);
}

}  // namespace vireo
