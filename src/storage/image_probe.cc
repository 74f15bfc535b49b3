#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/fd.h"
#include "common/process.h"
#include "storage/volume_pool.h"

namespace vireo {

namespace {

// Parses qemu-img's JSON. A type mismatch means qemu-img changed its output,
// which is our problem, not the user's.
Result<ImageInfo> ParseInfo(const std::string& path, const std::string& text) {
  ASSIGN_OR_RETURN(Json j, ParseJson(text));
  auto bad = [&](const char* what) {
    return Err(ErrorCode::kInternal, "qemu-img info " + path + ": " + what);
  };
  if (!j.is_object()) return bad("output is not an object");
  ImageInfo info;
  auto format = j.find("format");
  if (format == j.end() || !format->is_string()) return bad("no format");
  info.format = format->get<std::string>();
  auto vsize = j.find("virtual-size");
  if (vsize == j.end() || !vsize->is_number_unsigned())
    return bad("no virtual-size");
  info.virtual_size = vsize->get<uint64_t>();
  auto asize = j.find("actual-size");
  if (asize != j.end() && asize->is_number_unsigned())
    info.actual_size = asize->get<uint64_t>();
  auto backing = j.find("backing-filename");
  if (backing != j.end() && backing->is_string())
    info.backing_file = backing->get<std::string>();
  // An external data file makes the image read another host file, exactly
  // like a backing file; report it the same way so callers refuse it.
  if (info.backing_file.empty() && j.contains("format-specific")) {
    const Json& fs = j["format-specific"];
    if (fs.is_object() && fs.contains("data") && fs["data"].is_object() &&
        fs["data"].contains("data-file") &&
        fs["data"]["data-file"].is_string()) {
      info.backing_file = fs["data"]["data-file"].get<std::string>();
    }
  }
  return info;
}

}  // namespace

Result<ImageInfo> ProbeImage(const std::string& path) {
  if (path.empty())
    return Err(ErrorCode::kInvalidArgument, "image path is empty");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return Err(ErrorCode::kNotFound, "image '" + path + "' does not exist");
    }
    return ErrnoErr("stat image '" + path + "'");
  }
  if (!S_ISREG(st.st_mode)) {
    return Err(ErrorCode::kInvalidArgument,
               "image '" + path + "' is not a regular file");
  }
  // qemu-img reads "proto:..." names as protocols (nbd:, json:, http:); an
  // absolute path always starts with '/', so it is only ever a file.
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).string();
  if (ec)
    return Err(ErrorCode::kInvalidArgument,
               "image '" + path + "': " + ec.message());
  auto out = RunCommandOk({"qemu-img", "info", "--output=json", abs});
  if (!out) {
    // qemu-img ran and refused the file: the user's input is bad. Other
    // failures (not installed, timed out) keep their own code.
    if (out.error().code() != ErrorCode::kIo)
      return tl::unexpected<Error>(out.error());
    return Err(
        ErrorCode::kInvalidArgument,
        "image '" + path + "' is not readable: " + out.error().message());
  }
  try {
    return ParseInfo(path, *out);
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal, "qemu-img info " + path + ": " + e.what());
  }
}

Result<bool> IsIso9660(const std::string& path) {
  // The primary volume descriptor (sector 16) starts with its type byte and
  // the standard identifier "CD001".
  constexpr off_t kIsoMagicOffset = 0x8001;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoErr("open " + path);
  char magic[5] = {};
  ssize_t n;
  do {
    n = ::pread(fd.get(), magic, sizeof(magic), kIsoMagicOffset);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoErr("read " + path);
  return n == sizeof(magic) && std::string_view(magic, 5) == "CD001";
}

}  // namespace vireo
