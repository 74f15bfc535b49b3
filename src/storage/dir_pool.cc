#include "storage/dir_pool.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/fd.h"
#include "common/process.h"

namespace vireo {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSuffix = ".qcow2";
// Converting a multi-GiB image under TCG-era disks can be slow; a stuck
// qemu-img still must not hang an operation forever.
constexpr std::chrono::seconds kConvertTimeout{1800};

// Owner ids and volume names become path components: allow a conservative
// alphabet so none can climb out of the pool or hide as a temp file.
Status CheckComponent(const std::string& what, const std::string& value) {
  if (value.empty() || value.size() > 128 || value[0] == '.' ||
      value[0] == '-') {
    return Err(ErrorCode::kInvalidArgument,
               "invalid " + what + " '" + value + "'");
  }
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok)
      return Err(ErrorCode::kInvalidArgument,
                 "invalid " + what + " '" + value + "'");
  }
  return Ok();
}

// Removes a temporary file unless released: the failure paths of volume
// creation must leave nothing behind.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

std::string TempPathFor(const std::string& final_path) {
  static std::atomic<uint64_t> counter{0};
  fs::path p(final_path);
  return (p.parent_path() /
          ("." + p.filename().string() + ".tmp-" + std::to_string(::getpid()) +
           "-" + std::to_string(counter++)))
      .string();
}

// Moves a finished temp file into place without replacing a volume that
// appeared meanwhile.
Status CommitTemp(TempFile& tmp, const std::string& final_path) {
  if (::renameat2(AT_FDCWD, tmp.path().c_str(), AT_FDCWD, final_path.c_str(),
                  RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      return Err(ErrorCode::kAlreadyExists,
                 "volume '" + final_path + "' already exists");
    }
    return ErrnoErr("rename " + tmp.path() + " to " + final_path);
  }
  tmp.Release();
  return Ok();
}

// Reads the virtual size from a qcow2 header (big-endian u64 at offset 24)
// without spawning qemu-img per volume; falls back to the file size.
uint64_t VirtualSize(const fs::path& path) {
  std::error_code ec;
  uint64_t file_size = fs::file_size(path, ec);
  if (ec) return 0;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  unsigned char header[32];
  if (!fd || ::pread(fd.get(), header, sizeof(header), 0) != sizeof(header))
    return file_size;
  if (header[0] != 'Q' || header[1] != 'F' || header[2] != 'I' ||
      header[3] != 0xfb) {
    return file_size;
  }
  uint64_t size = 0;
  for (int i = 24; i < 32; ++i) size = (size << 8) | header[i];
  return size;
}

// qcow2 sizes are whole sectors; qemu-img create rounds up but resize
// refuses, so round everywhere for one rule.
std::string SizeArg(uint64_t bytes) {
  return std::to_string((bytes + 511) / 512 * 512);
}

}  // namespace

Result<std::unique_ptr<DirPool>> DirPool::Create(std::string name,
                                                 std::string root_dir) {
  if (root_dir.empty())
    return Err(ErrorCode::kInvalidArgument, "pool root directory is empty");
  std::error_code ec;
  fs::create_directories(root_dir, ec);
  if (ec)
    return Err(ErrorCode::kIo,
               "create pool directory " + root_dir + ": " + ec.message());
  fs::path root = fs::canonical(root_dir, ec);
  if (ec)
    return Err(ErrorCode::kIo,
               "resolve pool directory " + root_dir + ": " + ec.message());
  if (!fs::is_directory(root)) {
    return Err(ErrorCode::kInvalidArgument,
               "pool root " + root_dir + " is not a directory");
  }
  TRY_CTX(RunCommandOk({"qemu-img", "--version"}),
          "pool " + name + ": qemu-img is required");
  return std::unique_ptr<DirPool>(new DirPool(std::move(name), root.string()));
}

Result<std::string> DirPool::PrepareVolumePath(const std::string& owner_id,
                                               const std::string& volume) {
  TRY(CheckComponent("owner id", owner_id));
  TRY(CheckComponent("volume name", volume));
  fs::path dir = fs::path(root_) / owner_id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Err(ErrorCode::kIo,
               "create directory " + dir.string() + ": " + ec.message());
  std::string path = (dir / (volume + kSuffix)).string();
  if (fs::exists(fs::symlink_status(path, ec))) {
    return Err(ErrorCode::kAlreadyExists,
               "volume '" + path + "' already exists");
  }
  return path;
}

Result<std::string> DirPool::CreateVolume(const std::string& owner_id,
                                          const std::string& volume,
                                          uint64_t size_bytes) {
  if (size_bytes == 0) {
    return Err(ErrorCode::kInvalidArgument,
               "volume '" + volume + "': size must be positive");
  }
  ASSIGN_OR_RETURN(std::string path, PrepareVolumePath(owner_id, volume));
  TempFile tmp(TempPathFor(path));
  TRY_CTX(RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", "-o",
                        "preallocation=off", tmp.path(), SizeArg(size_bytes)}),
          "create volume " + path);
  TRY(CommitTemp(tmp, path));
  return path;
}

Result<std::string> DirPool::CreateLinkedClone(const std::string& owner_id,
                                               const std::string& volume,
                                               const std::string& base,
                                               const std::string& base_format,
                                               uint64_t min_size) {
  if (base_format != "qcow2" && base_format != "raw") {
    return Err(ErrorCode::kInvalidArgument, "cannot clone '" + base +
                                                "': format '" + base_format +
                                                "' cannot back a qcow2 volume");
  }
  if (!fs::path(base).is_absolute())
    return Err(ErrorCode::kInvalidArgument,
               "clone base '" + base + "' must be an absolute path");
  ASSIGN_OR_RETURN(std::string path, PrepareVolumePath(owner_id, volume));
  TempFile tmp(TempPathFor(path));
  // Only metadata is written: a clone costs one qcow2 header and tables, not
  // a copy. The size argument is omitted unless growing, so the clone takes
  // the base's size.
  std::vector<std::string> argv = {"qemu-img",  "create",  "-q", "-f",
                                   "qcow2",     "-b",      base, "-F",
                                   base_format, tmp.path()};
  if (min_size > 0) argv.push_back(SizeArg(min_size));
  auto created = RunCommandOk(argv);
  if (!created && min_size > 0) {
    // qemu-img refuses a size smaller than the base's; report it plainly.
    return Err(ErrorCode::kInvalidArgument,
               "clone of '" + base + "': " + created.error().message());
  }
  TRY_CTX(created, "create linked clone " + path);
  TRY(CommitTemp(tmp, path));
  return path;
}

Result<std::string> DirPool::CreateVolumeFrom(const std::string& owner_id,
                                              const std::string& volume,
                                              const std::string& source,
                                              uint64_t min_size) {
  ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(source));
  if (info.format != "qcow2" && info.format != "raw") {
    return Err(ErrorCode::kInvalidArgument,
               "image '" + source + "' has format '" + info.format +
                   "'; only qcow2 and raw are supported");
  }
  if (info.format == "raw" && IsIso9660(source).value_or(false)) {
    return Err(ErrorCode::kInvalidArgument,
               "'" + source +
                   "' is an ISO 9660 image, not a disk; attach it as a CD-ROM "
                   "with --iso");
  }
  // A backing or data file would make the copy read another host file the
  // user named, e.g. /etc/shadow: refuse rather than follow it.
  if (!info.backing_file.empty()) {
    return Err(ErrorCode::kInvalidArgument,
               "image '" + source + "' refers to another file ('" +
                   info.backing_file +
                   "'); flatten it first (qemu-img convert)");
  }
  ASSIGN_OR_RETURN(std::string path, PrepareVolumePath(owner_id, volume));
  std::error_code ec;
  std::string abs_source = fs::absolute(source, ec).string();
  if (ec)
    return Err(ErrorCode::kInvalidArgument,
               "image '" + source + "': " + ec.message());
  TempFile tmp(TempPathFor(path));
  // -f is the probed format: naming it stops qemu-img from guessing again,
  // which could differ if the file changed in between.
  TRY_CTX(RunCommandOk({"qemu-img", "convert", "-q", "-f", info.format, "-O",
                        "qcow2", abs_source, tmp.path()},
                       kConvertTimeout),
          "copy image " + source + " into volume " + path);
  if (min_size > info.virtual_size) {
    TRY_CTX(RunCommandOk({"qemu-img", "resize", "-q", "-f", "qcow2", tmp.path(),
                          SizeArg(min_size)}),
            "grow volume " + path);
  }
  TRY(CommitTemp(tmp, path));
  return path;
}

Status DirPool::CheckVolumePath(const std::string& path) const {
  fs::path p = fs::path(path).lexically_normal();
  fs::path parent = p.parent_path();
  // Only files exactly two levels under the root are volumes.
  if (!p.is_absolute() || parent.parent_path() != fs::path(root_) ||
      p.filename().string().size() <= std::string(kSuffix).size() ||
      !p.filename().string().ends_with(kSuffix)) {
    return Err(ErrorCode::kInvalidArgument,
               "'" + path + "' is not a volume of pool " + name_);
  }
  return Ok();
}

Status DirPool::ResizeVolume(const std::string& path, uint64_t new_size) {
  TRY(CheckVolumePath(path));
  ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(path));
  if (new_size < info.virtual_size) {
    return Err(ErrorCode::kInvalidArgument,
               "volume '" + path + "' is " + std::to_string(info.virtual_size) +
                   " bytes; shrinking to " + std::to_string(new_size) +
                   " is refused (data would be lost)");
  }
  if (new_size == info.virtual_size) return Ok();
  TRY_CTX(RunCommandOk({"qemu-img", "resize", "-q", "-f", "qcow2", path,
                        SizeArg(new_size)}),
          "resize volume " + path);
  return Ok();
}

Status DirPool::DeleteVolume(const std::string& path) {
  TRY(CheckVolumePath(path));
  fs::path p = fs::path(path).lexically_normal();
  if (::unlink(p.c_str()) != 0 && errno != ENOENT)
    return ErrnoErr("delete volume " + path);
  return Ok();
}

Status DirPool::DeleteOwner(const std::string& owner_id) {
  TRY(CheckComponent("owner id", owner_id));
  fs::path dir = fs::path(root_) / owner_id;
  std::error_code ec;
  // remove_all does not follow symlinks, so a link planted in the owner
  // directory cannot make us delete outside the pool.
  fs::remove_all(dir, ec);
  if (ec)
    return Err(ErrorCode::kIo, "delete " + dir.string() + ": " + ec.message());
  return Ok();
}

Result<Json> DirPool::Usage() const {
  struct statvfs vfs;
  if (::statvfs(root_.c_str(), &vfs) != 0) return ErrnoErr("statvfs " + root_);
  uint64_t capacity = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  uint64_t used =
      static_cast<uint64_t>(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
  uint64_t allocated = 0;
  uint64_t volumes = 0;
  std::error_code ec;
  for (const auto& owner : fs::directory_iterator(root_, ec)) {
    // Owners come and go while we scan; a vanished one just counts as empty.
    std::error_code owner_ec;
    if (!owner.is_directory(owner_ec)) continue;
    for (const auto& file : fs::directory_iterator(owner.path(), owner_ec)) {
      std::string fname = file.path().filename().string();
      if (fname.starts_with(".") || !fname.ends_with(kSuffix) ||
          !file.is_regular_file(owner_ec)) {
        continue;
      }
      allocated += VirtualSize(file.path());
      ++volumes;
    }
  }
  if (ec)
    return Err(ErrorCode::kIo, "scan pool " + root_ + ": " + ec.message());
  return Json{{"name", name_},      {"driver", "dir"},
              {"path", root_},      {"capacity_bytes", capacity},
              {"used_bytes", used}, {"allocated_bytes", allocated},
              {"volumes", volumes}};
}

}  // namespace vireo
