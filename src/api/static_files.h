#pragma once

#include <string>
#include <string_view>

#include "api/router.h"

namespace vireo {

// The web UI's built files (web/dist), served for every HTTPS path outside
// /1.0. A single-page app: "/" and paths without a file extension that name
// no file get index.html, so client-side routes survive a reload.
class StaticFiles {
 public:
  // root may not exist: then every request answers 404 "web UI not
  // installed" (vireod still serves the API).
  explicit StaticFiles(std::string root);

  // GET or HEAD of a raw (still percent-encoded) path.
  ApiResponse Serve(std::string_view method, std::string_view raw_path) const;
  const std::string& root() const { return root_; }

  // The Content-Type for a file name, by extension.
  static std::string ContentType(std::string_view name);
  // The default web root for a vireod binary at `exe`:
  // <dir>/../web/dist, else <dir>/../../web/dist, else the first one.
  static std::string DefaultRoot(const std::string& exe);

 private:
  ApiResponse File(const std::string& path, std::string_view method,
                   bool is_index) const;
  std::string root_;  // canonical, or empty when absent
};

}  // namespace vireo
