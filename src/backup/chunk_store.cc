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

std::vector<uint8_t> ChunkStore::Encode(const std::string& name,
                                        std::span<const uint8_t> plain) const {
  std::vector<uint8_t> packed(ZSTD_compressBound(plain.size()));
  size_t n = ZSTD_compress(packed.data(), packed.size(), plain.data(),
                           plain.size(), kZstdLevel);
  uint8_t flags = 0;
  if (!ZSTD_isError(n) && n < plain.size()) {
    packed.resize(n);
    flags |= kFlagZstd;
  } else {
    packed.assign(plain.begin(), plain.end());
  }
  std::vector<uint8_t> out(kHeaderSize);
  std::memcpy(out.data(), kMagic, 4);
  out[4] = kVersion;
  uint32_t len = static_cast<uint32_t>(plain.size());
  std::memcpy(out.data() + 8, &len, 4);
  if (keys_) {
    out[5] = flags | kFlagSealed;
    std::vector<uint8_t> aad(out.begin(), out.end());
    aad.insert(aad.end(), name.begin(), name.end());
    // Seal cannot fail short of an OpenSSL malfunction; treat as fatal.
    auto sealed = Seal(keys_->chunk_enc, aad, packed);
    if (!sealed) std::abort();
    out.insert(out.end(), sealed->begin(), sealed->end());
  } else {
    out[5] = flags;
    out.insert(out.end(), packed.begin(), packed.end());
  }
  return out;
}

Result<ChunkStore::PutResult> ChunkStore::Put(std::span<const uint8_t> plain) {
  PutResult res{NameOf(plain), 0};
  std::string path = PathOf(res.name);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return res;  // dedup
  std::string sub = dir_ + "/" + res.name.substr(0, 2);
  if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoErr("mkdir " + sub);
  std::vector<uint8_t> file = Encode(res.name, plain);
  // A concurrent Put of the same chunk renames identical content over ours:
  // harmless, so no lock is needed around the write.
  TRY(WriteFileAtomic(path, file, /*sync_dir=*/false));
  res.bytes_new = file.size();
  std::lock_guard lock(mu_);
  dirty_dirs_.insert(sub);
  return res;
}

Status ChunkStore::SyncDirs() {
  std::set<std::string> dirs;
  {
    std::lock_guard lock(mu_);
    dirs.swap(dirty_dirs_);
  }
  for (const auto& d : dirs) TRY(FsyncDir(d));
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
  if (len > kChunkSize)
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
    size_t n = ZSTD_decompress(plain.data(), plain.size(), payload.data(),
                               payload.size());
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
