#include "api/static_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/responses.h"

namespace vireo {

namespace fs = std::filesystem;

namespace {

// The UI's files are small (a few MiB); bigger files are not ours.
constexpr uintmax_t kMaxFileBytes = 64 << 20;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void AddCommonHeaders(ApiResponse& r) {
  r.headers["X-Content-Type-Options"] = "nosniff";
  r.headers["X-Frame-Options"] = "DENY";
  r.headers["Referrer-Policy"] = "no-referrer";
}

}  // namespace

StaticFiles::StaticFiles(std::string root) {
  std::error_code ec;
  if (!root.empty() && fs::is_directory(root, ec)) {
    root_ = fs::canonical(root, ec).string();
    if (ec) root_.clear();
  }
}

std::string StaticFiles::DefaultRoot(const std::string& exe) {
  const fs::path dir = fs::path(exe).parent_path();
  const fs::path first = (dir / ".." / "web" / "dist").lexically_normal();
  const fs::path second =
      (dir / ".." / ".." / "web" / "dist").lexically_normal();
  std::error_code ec;
  if (fs::is_directory(first, ec)) return first.string();
  if (fs::is_directory(second, ec)) return second.string();
  return first.string();
}

std::string StaticFiles::ContentType(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".woff2", "font/woff2"},
      {".json", "application/json"},
      {".wasm", "application/wasm"},
      {".ico", "image/x-icon"},
      {".map", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [ext, type] : kTypes)
    if (EndsWith(name, ext)) return std::string(type);
  return "application/octet-stream";
}

ApiResponse StaticFiles::Serve(std::string_view method,
                               std::string_view raw_path) const {
  if (method != "GET" && method != "HEAD") {
    ApiResponse r = ErrorResponse(
        405, "invalid_argument",
        "only GET and HEAD are allowed on " + std::string(raw_path));
    r.headers["Allow"] = "GET, HEAD";
    return r;
  }
  if (root_.empty())
    return ErrorResponse(404, "not_found",
                         "web UI not installed on this server (no web root)");
  auto decoded = PercentDecode(raw_path);
  if (!decoded || decoded->find('\0') != std::string::npos ||
      decoded->find('\\') != std::string::npos)
    return ErrorResponse(400, "invalid_argument", "invalid path");
  const std::vector<std::string> segs = SplitPath(*decoded);
  for (const auto& s : segs) {
    if (s == ".." || s == ".")
      return ErrorResponse(400, "invalid_argument",
                           "invalid path: '.' and '..' segments are refused");
  }
  std::string rel;
  for (const auto& s : segs) rel += "/" + s;
  std::error_code ec;
  if (!rel.empty() && fs::is_regular_file(root_ + rel, ec))
    return File(root_ + rel, method, false);
  // A name with an extension is a file that is missing; anything else is a
  // client-side route of the single-page app.
  const bool has_ext =
      !segs.empty() && segs.back().find('.') != std::string::npos;
  if (has_ext)
    return ErrorResponse(404, "not_found", "no such file: " + *decoded);
  return File(root_ + "/index.html", method, true);
}

ApiResponse StaticFiles::File(const std::string& path, std::string_view method,
                              bool is_index) const {
  std::error_code ec;
  // Symlinks inside the web root must not lead out of it.
  const std::string real = fs::canonical(path, ec).string();
  if (ec || real.compare(0, root_.size() + 1, root_ + "/") != 0)
    return ErrorResponse(404, "not_found", "no such file");
  const uintmax_t size = fs::file_size(real, ec);
  if (ec || size > kMaxFileBytes)
    return ErrorResponse(404, "not_found", "no such file");
  ApiResponse r;
  r.content_type = ContentType(real);
  AddCommonHeaders(r);
  // Vite puts content-hashed names under assets/: they never change. Every
  // other file (index.html above all) is revalidated so a new UI is seen.
  const bool hashed =
      real.compare(0, root_.size() + 8, root_ + "/assets/") == 0;
  r.headers["Cache-Control"] = (hashed && !is_index)
                                   ? "public, max-age=31536000, immutable"
                                   : "no-cache";
  if (method == "HEAD") return r;
  std::ifstream in(real, std::ios::binary);
  if (!in) return ErrorResponse(404, "not_found", "no such file");
  std::ostringstream ss;
  ss << in.rdbuf();
  r.body = ss.str();
  return r;
}

}  // namespace vireo
