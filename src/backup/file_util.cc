#include "backup/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "backup/crypto.h"
#include "common/random.h"

namespace vireo::backup {

Result<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoErr("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoErr("stat " + path);
  std::vector<uint8_t> data(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoErr("read " + path);
    if (n == 0) break;  // shrank under us: return what is there
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

static Status WriteAll(int fd, std::span<const uint8_t> data,
                       const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoErr("write " + what);
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoErr("open " + dir);
  if (::fsync(fd.get()) != 0) return ErrnoErr("fsync " + dir);
  return Ok();
}

Result<std::string> WriteTempFile(const std::string& dir,
                                  std::span<const uint8_t> data) {
  std::string tmp = dir + "/" + std::string(kTempPrefix) + RandomHex(8);
  UniqueFd fd(
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return ErrnoErr("create " + tmp);
  Status st = WriteAll(fd.get(), data, tmp);
  // Start writeback now (asynchronous, no wait, no durability promise): the
  // batch's later syncfs then finds little left to write instead of every
  // chunk of the backup at once (hosts with much RAM would otherwise hold
  // gigabytes dirty until the commit).
  if (st) (void)::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  if (st && ::close(fd.Release()) != 0) st = ErrnoErr("close " + tmp);
  if (!st) {
    ::unlink(tmp.c_str());
    return tl::unexpected(st.error());
  }
  return tmp;
}

Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data,
                       bool sync_dir) {
  std::filesystem::path p(path);
  std::string dir = p.parent_path().string();
  std::string tmp = dir + "/" + std::string(kTempPrefix) + RandomHex(8);
  UniqueFd fd(
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return ErrnoErr("create " + tmp);
  Status st = WriteAll(fd.get(), data, tmp);
  if (st && ::fsync(fd.get()) != 0) st = ErrnoErr("fsync " + tmp);
  fd.Reset();
  if (st && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = ErrnoErr("rename " + tmp + " to " + path);
  if (!st) {
    ::unlink(tmp.c_str());
    return st;
  }
  if (sync_dir) TRY(FsyncDir(dir));
  return Ok();
}

Result<FileLock> FileLock::TryAcquire(const std::string& path, Mode mode,
                                      int wait_ms) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoErr("open " + path);
  int op = (mode == Mode::kShared ? LOCK_SH : LOCK_EX) | LOCK_NB;
  while (::flock(fd.get(), op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK && wait_ms > 0) {
      ::usleep(50'000);
      wait_ms -= 50;
      continue;
    }
    if (errno == EWOULDBLOCK)
      return Err(ErrorCode::kFailedPrecondition,
                 mode == Mode::kShared
                     ? "backup store is busy (garbage collection or pruning "
                       "is running); try again later"
                     : "backup store is busy (a backup is being written); "
                       "try again later");
    return ErrnoErr("flock " + path);
  }
  return FileLock(std::move(fd));
}

Result<Key> LoadKeyFile(const std::string& path) {
  auto data = ReadWholeFile(path);
  if (!data) {
    Error e = data.error();
    e.WithContext("read encryption key file");
    return tl::unexpected<Error>(e);
  }
  Key key{};
  if (data->size() == key.size()) {
    std::copy(data->begin(), data->end(), key.begin());
    return key;
  }
  std::string text(data->begin(), data->end());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' ||
                           text.back() == ' ' || text.back() == '\t'))
    text.pop_back();
  if (!FromHex(text, key))
    return Err(ErrorCode::kInvalidArgument,
               "encryption key file " + path +
                   " must hold 32 raw bytes or 64 hex characters");
  return key;
}

}  // namespace vireo::backup
