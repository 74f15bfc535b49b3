#include "backup/chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>
#include <filesystem>

#include "backup/file_util.h"

namespace vireo::backup {

namespace fs = std::filesystem;

namespace {
constexpr char kMagic[4] = {'V', 'C', 'H', 'K'};
constexpr uint8_t kVersion = 1;
constexpr uint8_t kFlagZstd = 1;
constexpr uint8_t kFlagSealed = 2;
constexpr size_t kHeaderSize = 12;
// Level 1: chunks are compressed on the backup's critical path; the ratio
// gain of higher levels is small for disk images.
constexpr int kZstdLevel = 1;

// One compression/decompression context per thread, reused across chunks:
// ZSTD_compress() would allocate and initialize a fresh context for each
// chunk, which shows at 256 KiB chunks.
struct ZstdContexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
ZstdContexts& Zstd() {
  thread_local ZstdContexts z;
  return z;
}

Error ChunkErr(const std::string& name, const std::string& what) {
  return Error(ErrorCode::kDataLoss, "chunk " + name + ": " + what);
}
}  // namespace

StoreKeys StoreKeys::Derive(const Key& key) {
  return {DeriveKey(key, "chunk-id"), DeriveKey(key, "chunk-enc"),
          DeriveKey(key, "manifest"), DeriveKey(key, "key-check")};
}

bool IsAllZero(std::span<const uint8_t> data) {
  // Word-wise compare is fast; the tail byte loop handles odd sizes.
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    if (w != 0) return false;
  }
  for (; i < data.size(); ++i)
    if (data[i] != 0) return false;
  return true;
}

std::string ChunkStore::NameOf(std::span<const uint8_t> plain) const {
  return ToHex(keys_ ? HmacSha256(keys_->chunk_id, plain) : Sha256(plain));
}

bool ChunkStore::ValidName(std::string_view name) {
  if (name.size() != 64) return false;
  for (char c : name)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string ChunkStore::PathOf(const std::string& name) const {
  return dir_ + "/" + name.substr(0, 2) + "/" + name;
}

// Buffers reused by every chunk a thread encodes; a fresh (zero-filled)
// vector per chunk cost a measurable memset at 256 KiB chunks.
std::span<uint8_t> ChunkStore::Encode(const std::string& name,
                                      std::span<const uint8_t> plain) const {
  thread_local std::vector<uint8_t> file_buf, packed_buf;
  auto fit = [](std::vector<uint8_t>& v, size_t n) {
    if (v.size() < n) v.resize(n);
  };
  const size_t bound = ZSTD_compressBound(plain.size());
  // Plain stores compress straight behind the header; sealed ones compress
  // into packed_buf and seal from there.
  fit(file_buf, kHeaderSize + bound);
  uint8_t* payload = keys_ ? (fit(packed_buf, bound), packed_buf.data())
                           : file_buf.data() + kHeaderSize;
  size_t n = ZSTD_compressCCtx(Zstd().c, payload, bound, plain.data(),
                               plain.size(), kZstdLevel);
  uint8_t flags = 0;
  if (!ZSTD_isError(n) && n < plain.size()) {
    flags |= kFlagZstd;
  } else {
    std::memcpy(payload, plain.data(), plain.size());
    n = plain.size();
  }
  uint8_t* out = file_buf.data();
  std::memcpy(out, kMagic, 4);
  out[4] = kVersion;
  out[6] = out[7] = 0;
  uint32_t len = static_cast<uint32_t>(plain.size());
  std::memcpy(out + 8, &len, 4);
  if (!keys_) {
    out[5] = flags;
    return {out, kHeaderSize + n};
  }
  out[5] = flags | kFlagSealed;
  std::vector<uint8_t> aad(out, out + kHeaderSize);
  aad.insert(aad.end(), name.begin(), name.end());
  // Seal cannot fail short of an OpenSSL malfunction; treat as fatal.
  auto sealed = Seal(keys_->chunk_enc, aad, {payload, n});
  if (!sealed) std::abort();
  fit(file_buf, kHeaderSize + sealed->size());
  std::memcpy(file_buf.data() + kHeaderSize, sealed->data(), sealed->size());
  return {file_buf.data(), kHeaderSize + sealed->size()};
}

// Durability without an fsync per chunk file. A chunk file only ever gets
// its final name (chunks/xx/<name>) after its data is durable, so any file
// found under a chunk name, by a later dedup check or by gc/verify, holds
// complete content even after a power loss. Put() writes the file under a
// temp name without syncing it; Publish() then, once per backup:
//   1. syncfs() on the store's filesystem: every temp file's data and inode
//      is on stable storage (one journal commit instead of one per chunk);
//   2. renames each temp file to its chunk name;
//   3. syncfs() again: the renames (and those of other writers whose
//      chunks this batch deduplicated against) are durable.
// Only then does the writer save its manifest (itself fsync'd + renamed), so
// a committed manifest never references a chunk that a crash can lose. A
// crash before step 2 leaves temp files, which gc removes under the
// exclusive lock (no writer runs then), exactly as before; prune only
// removes manifests. The sync fd is opened when the batch starts: syncfs
// reports writeback errors that happened after the fd was opened, which then
// covers every chunk of the batch; the background flusher (PendingChunks)
// shares that fd and hands any error it sees on to Publish(), since each
// error is reported only once per fd. Its syncs change nothing in the
// argument: they only make step 1 quick.
std::unique_ptr<PendingChunks> ChunkStore::NewBatch() const {
  auto b = std::make_unique<PendingChunks>();
  b->sync_fd_.Reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!b->sync_fd_)
    b->status_ = ErrnoErr("open " + dir_);
  else
    b->flusher_ = std::thread([p = b.get()] { p->Flusher(); });
  return b;
}

void PendingChunks::Written(uint64_t bytes) {
  unflushed_ += bytes;
  if (unflushed_ >= kFlushEvery) {
    unflushed_ = 0;
    flush_wanted_ = true;
    cv_.notify_one();
  }
}

void PendingChunks::Flusher() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return flush_wanted_ || stop_; });
    if (stop_) return;
    flush_wanted_ = false;
    lock.unlock();
    // syncfs reports a writeback error once per fd: one seen here must fail
    // the Publish() that would otherwise not see it again.
    int rc = ::syncfs(sync_fd_.get());
    int err = errno;
    lock.lock();
    if (rc != 0 && status_) status_ = ErrnoErr("syncfs", err);
  }
}

void PendingChunks::StopFlusher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (flusher_.joinable()) flusher_.join();
}

PendingChunks::~PendingChunks() {
  StopFlusher();
  for (const auto& [name, tmp] : temps_)
    if (!tmp.empty()) ::unlink(tmp.c_str());
}

Result<ChunkStore::PutResult> ChunkStore::Put(std::span<const uint8_t> plain,
                                              PendingChunks* batch) {
  PutResult res{NameOf(plain), 0};
  std::string path = PathOf(res.name);
  std::string sub = dir_ + "/" + res.name.substr(0, 2);
  {
    std::lock_guard lock(batch->mu_);
    if (!batch->status_) return tl::unexpected(batch->status_.error());
    // Already in this batch (maybe still being written by another thread;
    // a failure there fails the whole backup).
    if (!batch->temps_.emplace(res.name, "").second) return res;
  }
  auto forget = [&] {
    std::lock_guard lock(batch->mu_);
    batch->temps_.erase(res.name);
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    // Dedup. The file may have been renamed into place by another writer
    // (maybe another process) whose final syncfs has not happened yet;
    // Publish()'s second syncfs covers that rename too.
    forget();
    return res;
  }
  if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST) {
    forget();
    return ErrnoErr("mkdir " + sub);
  }
  std::span<const uint8_t> file = Encode(res.name, plain);
  auto tmp = WriteTempFile(sub, file);
  if (!tmp) {
    forget();
    return tl::unexpected(tmp.error());
  }
  res.bytes_new = file.size();
  std::lock_guard lock(batch->mu_);
  batch->temps_[res.name] = std::move(*tmp);
  batch->Written(file.size());
  return res;
}

Status ChunkStore::Publish(PendingChunks* batch) {
  batch->StopFlusher();
  std::lock_guard lock(batch->mu_);
  if (!batch->status_) return tl::unexpected(batch->status_.error());
  int fd = batch->sync_fd_.get();
  if (::syncfs(fd) != 0) return ErrnoErr("syncfs " + dir_);
  for (auto it = batch->temps_.begin(); it != batch->temps_.end();) {
    if (!it->second.empty()) {
      // A concurrent writer may have published the same chunk meanwhile:
      // renaming identical content over it is harmless.
      std::string path = PathOf(it->first);
      if (::rename(it->second.c_str(), path.c_str()) != 0)
        return ErrnoErr("rename " + it->second + " to " + path);
    }
    it = batch->temps_.erase(it);
  }
  if (::syncfs(fd) != 0) return ErrnoErr("syncfs " + dir_);
  return Ok();
}

Result<std::vector<uint8_t>> ChunkStore::Get(const std::string& name) const {
  if (!ValidName(name))
    return tl::unexpected(ChunkErr(name, "invalid chunk name"));
  auto file = ReadWholeFile(PathOf(name));
  if (!file) {
    if (file.error().err_no() == ENOENT)
      return tl::unexpected(ChunkErr(name, "missing"));
    return tl::unexpected(ChunkErr(name, file.error().ToString()));
  }
  if (file->size() < kHeaderSize || std::memcmp(file->data(), kMagic, 4) != 0)
    return tl::unexpected(ChunkErr(name, "truncated or bad header"));
  if ((*file)[4] != kVersion)
    return tl::unexpected(ChunkErr(name, "unknown chunk version"));
  uint8_t flags = (*file)[5];
  uint32_t len;
  std::memcpy(&len, file->data() + 8, 4);
  if (len > kMaxChunkSize)
    return tl::unexpected(ChunkErr(name, "bad plaintext length"));
  std::span<const uint8_t> payload(file->data() + kHeaderSize,
                                   file->size() - kHeaderSize);
  std::vector<uint8_t> opened;
  if ((flags & kFlagSealed) != 0) {
    if (!keys_)
      return tl::unexpected(ChunkErr(name, "encrypted chunk in a plain store"));
    std::vector<uint8_t> aad(file->begin(), file->begin() + kHeaderSize);
    aad.insert(aad.end(), name.begin(), name.end());
    auto o = Open(keys_->chunk_enc, aad, payload);
    if (!o)
      return tl::unexpected(
          ChunkErr(name, "damaged (" + o.error().message() + ")"));
    opened = std::move(*o);
    payload = opened;
  } else if (keys_) {
    return tl::unexpected(
        ChunkErr(name, "unencrypted chunk in an encrypted store"));
  }
  std::vector<uint8_t> plain;
  if ((flags & kFlagZstd) != 0) {
    plain.resize(len);
    size_t n = ZSTD_decompressDCtx(Zstd().d, plain.data(), plain.size(),
                                   payload.data(), payload.size());
    if (ZSTD_isError(n) || n != len)
      return tl::unexpected(ChunkErr(name, "damaged (decompression failed)"));
  } else {
    if (payload.size() != len)
      return tl::unexpected(ChunkErr(name, "truncated"));
    plain.assign(payload.begin(), payload.end());
  }
  if (NameOf(plain) != name)
    return tl::unexpected(ChunkErr(name, "damaged (hash mismatch)"));
  return plain;
}

Status ChunkStore::ForEach(
    const std::function<void(const Entry&)>& on_chunk,
    const std::function<void(const std::string& path)>& on_temp) const {
  std::error_code ec;
  for (fs::directory_iterator sub(dir_, ec), end; !ec && sub != end;
       sub.increment(ec)) {
    if (!sub->is_directory()) continue;
    std::error_code ec2;
    for (fs::directory_iterator it(sub->path(), ec2); !ec2 && it != end;
         it.increment(ec2)) {
      std::string fname = it->path().filename().string();
      if (fname.starts_with(kTempPrefix)) {
        on_temp(it->path().string());
      } else if (ValidName(fname)) {
        std::error_code ec3;
        uint64_t size = it->file_size(ec3);
        on_chunk({fname, ec3 ? 0 : size});
      }
    }
    if (ec2) return ErrnoErr("list " + sub->path().string(), ec2.value());
  }
  if (ec) return ErrnoErr("list " + dir_, ec.value());
  return Ok();
}

}  // namespace vireo::backup
