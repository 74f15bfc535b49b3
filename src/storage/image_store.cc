#include "storage/image_store.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "common/fd.h"
#include "common/log.h"
#include "common/process.h"
#include "storage/volume_pool.h"

namespace vireo {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTempPrefix = ".tmp-";
// Multi-GiB images take a while to convert and hash; a stuck tool still must
// not hang an operation forever.
constexpr std::chrono::seconds kSlowTimeout{1800};
Status CheckId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 64 && id[0] != '.' && id[0] != '-';
  for (char c : id)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '_');
  if (!ok) return Err(ErrorCode::kInvalidArgument, "invalid image id " + id);
  return Ok();
}

Status FsyncPath(const std::string& path, bool directory) {
  UniqueFd fd(::open(path.c_str(),
                     (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoErr("open " + path);
  if (::fsync(fd.get()) != 0) return ErrnoErr("fsync " + path);
  return Ok();
}

// Removes a temporary file unless released, so failures leave nothing.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  // fsync, then rename without replacing anything, then fsync the directory:
  // after this returns the file survives a crash under its final name.
  Status Commit(const std::string& final_path) {
    TRY(FsyncPath(path_, false));
    if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, final_path.c_str(),
                    RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST)
        return Err(ErrorCode::kAlreadyExists,
                   "'" + final_path + "' already exists");
      return ErrnoErr("rename " + path_ + " to " + final_path);
    }
    path_.clear();
    return FsyncPath(fs::path(final_path).parent_path().string(), true);
  }

 private:
  std::string path_;
};

std::string TempNameIn(const std::string& dir, const std::string& base) {
  static std::atomic<uint64_t> counter{0};
  return dir + "/" + kTempPrefix + base + "-" + std::to_string(::getpid()) +
         "-" + std::to_string(counter++);
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  uint64_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// qemu-img check exits 0 when clean and 63 for formats it cannot check;
// anything else means damage (or a file it cannot even open).
Status CheckIntegrity(const std::string& path, const std::string& format) {
  ASSIGN_OR_RETURN(CommandOutput out,
                   RunCommand({"qemu-img", "check", "-q", "-f", format, path},
                              kSlowTimeout));
  if (out.status.code == 0 || out.status.code == 63) return Ok();
  std::string detail = out.err.empty() ? out.out : out.err;
  if (auto nl = detail.find('\n'); nl != std::string::npos) detail.resize(nl);
  return Err(ErrorCode::kInvalidArgument,
             "image '" + path + "' is damaged (qemu-img check: " +
                 (detail.empty() ? out.status.Describe() : detail) + ")");
}

// A vmdk descriptor may name other host files as its extents, which would be
// read like a backing file; only self-contained vmdk files are accepted.
Status CheckVmdkExtents(const std::string& abs) {
  ASSIGN_OR_RETURN(std::string text,
                   RunCommandOk({"qemu-img", "info", "--output=json", abs}));
  auto j = ParseJson(text);
  if (!j || !j->is_object())
    return Err(ErrorCode::kInternal, "qemu-img info " + abs + ": bad JSON");
  try {
    const Json& extents = (*j)["format-specific"]["data"]["extents"];
    if (!extents.is_array()) return Ok();
    for (const auto& e : extents) {
      std::string file = e.value("filename", "");
      if (file != abs)
        return Err(ErrorCode::kInvalidArgument,
                   "image '" + abs + "' refers to another file ('" + file +
                       "'); convert it to a single file first");
    }
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal, "qemu-img info " + abs + ": " + e.what());
  }
  return Ok();
}

}  // namespace

Result<std::string> Sha256File(const std::string& path) {
  ASSIGN_OR_RETURN(std::string out,
                   RunCommandOk({"sha256sum", "--", path}, kSlowTimeout));
  if (out.size() < 64)
    return Err(ErrorCode::kInternal, "sha256sum printed '" + out + "'");
  return out.substr(0, 64);
}

Result<std::unique_ptr<ImageStore>> ImageStore::Create(std::string dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Err(ErrorCode::kIo,
               "create image directory " + dir + ": " + ec.message());
  fs::path root = fs::canonical(dir, ec);
  if (ec) return Err(ErrorCode::kIo, "resolve " + dir + ": " + ec.message());
  // Only one vireod uses a data dir, so any temp file here is from an import
  // that a crash interrupted.
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string fname = entry.path().filename().string();
    if (fname.starts_with(kTempPrefix)) {
      LOG_INFO("removing interrupted image import {}", entry.path().string());
      fs::remove(entry.path(), ec);
    }
  }
  return std::unique_ptr<ImageStore>(new ImageStore(root.string()));
}

Result<std::string> ImageStore::DetectFormat(const std::string& path) {
  ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(path));
  if (info.format == "raw" && IsIso9660(path).value_or(false))
    return std::string("iso");
  return info.format;
}

Result<StoredImage> ImageStore::Import(const std::string& source,
                                       const std::string& id) {
  TRY(CheckId(id));
  std::error_code ec;
  std::string abs = fs::absolute(source, ec).lexically_normal().string();
  if (ec || source.empty())
    return Err(ErrorCode::kInvalidArgument, "bad image path '" + source + "'");
  ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(abs));
  if (info.format == "raw" && IsIso9660(abs).value_or(false))
    return Store(abs, "raw", id, true);
  const std::string& f = info.format;
  if (f != "qcow2" && f != "raw" && f != "vmdk" && f != "vdi")
    return Err(ErrorCode::kInvalidArgument,
               "image '" + source + "' has format '" + f +
                   "'; supported: qcow2, raw, vmdk, vdi, iso");
  if (!info.backing_file.empty())
    return Err(ErrorCode::kInvalidArgument,
               "image '" + source + "' has a backing file ('" +
                   info.backing_file +
                   "') outside the image store; flatten it first "
                   "(qemu-img convert)");
  if (f == "vmdk") TRY(CheckVmdkExtents(abs));
  if (f != "raw") TRY(CheckIntegrity(abs, f));
  return Store(abs, f, id, false);
}

Result<StoredImage> ImageStore::ImportDisk(const std::string& disk,
                                           const std::string& disk_format,
                                           const std::string& id) {
  TRY(CheckId(id));
  if (disk_format != "qcow2" && disk_format != "raw")
    return Err(ErrorCode::kInvalidArgument,
               "disk '" + disk + "' has format '" + disk_format +
                   "'; only qcow2 and raw disks can be published");
  if (disk_format == "qcow2") TRY(CheckIntegrity(disk, "qcow2"));
  return Store(disk, disk_format, id, false);
}

Result<StoredImage> ImageStore::Store(const std::string& source,
                                      const std::string& source_format,
                                      const std::string& id, bool iso) {
  std::string final_path = dir_ + "/" + id + (iso ? ".iso" : ".qcow2");
  TempFile tmp(TempNameIn(dir_, id));
  if (iso) {
    std::error_code ec;
    fs::copy_file(source, tmp.path(), ec);
    if (ec) return Err(ErrorCode::kIo, "copy " + source + ": " + ec.message());
  } else {
    // convert writes a fresh file from the guest-visible data: it drops any
    // backing chain and whatever else the source's metadata held.
    TRY_CTX(RunCommandOk({"qemu-img", "convert", "-q", "-f", source_format,
                          "-O", "qcow2", source, tmp.path()},
                         kSlowTimeout),
            "convert " + source);
  }
  StoredImage image;
  image.format = iso ? "iso" : "qcow2";
  ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(tmp.path()));
  image.virtual_size = info.virtual_size;
  image.size = FileSize(tmp.path());
  ASSIGN_OR_RETURN(image.sha256, Sha256File(tmp.path()));
  TRY(tmp.Commit(final_path));
  image.path = final_path;
  return image;
}

Status ImageStore::Export(const StoredImage& image, const std::string& dest,
                          const std::string& format) {
  fs::path d(dest);
  if (!d.is_absolute() || d.filename().empty())
    return Err(ErrorCode::kInvalidArgument,
               "export path must be an absolute file path: '" + dest + "'");
  std::error_code ec;
  if (fs::exists(fs::symlink_status(d, ec)))
    return Err(ErrorCode::kAlreadyExists, "'" + dest + "' already exists");
  if (!fs::is_directory(d.parent_path(), ec))
    return Err(ErrorCode::kInvalidArgument,
               "directory '" + d.parent_path().string() + "' does not exist");
  TempFile tmp(TempNameIn(d.parent_path().string(), d.filename().string()));
  if (image.format == "iso") {
    if (!format.empty() && format != "raw" && format != "iso")
      return Err(ErrorCode::kInvalidArgument,
                 "an ISO image can only be exported as it is (raw)");
    fs::copy_file(image.path, tmp.path(), ec);
    if (ec)
      return Err(ErrorCode::kIo, "copy " + image.path + ": " + ec.message());
  } else {
    std::string out = format.empty() ? "qcow2" : format;
    if (out != "qcow2" && out != "raw" && out != "vmdk" && out != "vdi")
      return Err(
          ErrorCode::kInvalidArgument,
          "unsupported export format '" + out + "' (qcow2, raw, vmdk or vdi)");
    TRY_CTX(RunCommandOk({"qemu-img", "convert", "-q", "-f", "qcow2", "-O", out,
                          image.path, tmp.path()},
                         kSlowTimeout),
            "export " + image.path);
  }
  return tmp.Commit(dest);
}

Status ImageStore::Remove(const std::string& path) {
  if (!Owns(path))
    return Err(ErrorCode::kInvalidArgument,
               "'" + path + "' is not in the image store");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoErr("delete " + path);
  return Ok();
}

bool ImageStore::Owns(const std::string& path) const {
  fs::path p = fs::path(path).lexically_normal();
  return p.is_absolute() && p.parent_path() == fs::path(dir_) &&
         !p.filename().string().starts_with(".");
}

}  // namespace vireo
