#pragma once

// Small POSIX helpers for the repository: whole-file reads, crash-safe
// writes (temp file + fsync + rename + directory fsync) and flock locks.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace vireo::backup {

// Prefix of every temporary file the repository writes; anything starting
// with it is garbage after a crash and is removed under the exclusive lock.
inline constexpr std::string_view kTempPrefix = ".tmp-";

[[nodiscard]] Result<std::vector<uint8_t>> ReadWholeFile(
    const std::string& path);
// Writes `data` to a temp file next to `path`, fsyncs it and renames it over
// `path`. With sync_dir, the directory is fsync'd too so the rename is
// durable; callers batching many renames sync directories once at the end.
[[nodiscard]] Status WriteFileAtomic(const std::string& path,
                                     std::span<const uint8_t> data,
                                     bool sync_dir = true);
[[nodiscard]] Status FsyncDir(const std::string& dir);
// Creates a new temp file (kTempPrefix + random) in `dir` holding `data`,
// without fsync: the caller makes it durable in a batch (see
// ChunkStore::Publish). Returns its path.
[[nodiscard]] Result<std::string> WriteTempFile(const std::string& dir,
                                                std::span<const uint8_t> data);

// An flock(2) lock on a file, held until destruction.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  // Polls for up to `wait_ms` (flock has no timeout, and blocking forever
  // behind a long backup would hang an API call): kFailedPrecondition when
  // the lock is still held incompatibly.
  [[nodiscard]] static Result<FileLock> TryAcquire(const std::string& path,
                                                   Mode mode, int wait_ms = 0);
  FileLock() = default;

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace vireo::backup
