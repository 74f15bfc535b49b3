// Export/Import of one backup as a single portable archive file.
//
// Format (integers little endian), documented in docs/backups.md:
//   "VIREOARC" | u32 version (1) | u32 reserved (0)
//   records:  u8 type | u32 disk | u64 chunk index | u64 length | payload
//     type 1 (manifest): payload = JSON {"backup": BackupInfo}; first record
//     type 2 (data): a zstd frame of the plaintext chunk `chunk index` of
//       disk `disk` (position in backup.disks); all-zero chunks are absent
//     type 3 (end): payload = SHA-256 of every byte before this record
// Data records come ordered by disk, then chunk index. The archive holds
// plaintext (re-encrypted by the importing store if that is encrypted).

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zstd.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "backup/fs_repository.h"
#include "common/random.h"

namespace vireo::backup {

namespace {

constexpr char kMagic[8] = {'V', 'I', 'R', 'E', 'O', 'A', 'R', 'C'};
constexpr uint32_t kArchiveVersion = 1;
constexpr uint8_t kRecManifest = 1, kRecData = 2, kRecEnd = 3;
constexpr size_t kRecHeader = 1 + 4 + 8 + 8;
constexpr uint64_t kMaxManifest = 256ull << 20;

struct MdFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// Sequential file I/O that hashes every byte passing through.
class HashedFile {
 public:
  HashedFile(UniqueFd fd, std::string path)
      : fd_(std::move(fd)), path_(std::move(path)), md_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(md_.get(), EVP_sha256(), nullptr);
  }
  Status Write(std::span<const uint8_t> data) {
    EVP_DigestUpdate(md_.get(), data.data(), data.size());
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd_.get(), data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoErr("write " + path_);
      done += static_cast<size_t>(n);
    }
    return Ok();
  }
  // Reads exactly out.size() bytes; kDataLoss at a premature end.
  Status Read(std::span<uint8_t> out, bool hash = true) {
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::read(fd_.get(), out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoErr("read " + path_);
      if (n == 0)
        return Err(ErrorCode::kDataLoss, "archive " + path_ + " is truncated");
      done += static_cast<size_t>(n);
    }
    if (hash) EVP_DigestUpdate(md_.get(), out.data(), out.size());
    return Ok();
  }
  bool AtEof() {
    uint8_t b;
    return ::read(fd_.get(), &b, 1) == 0;
  }
  Digest Current() {
    // Finalize a copy so hashing can continue.
    std::unique_ptr<EVP_MD_CTX, MdFree> copy(EVP_MD_CTX_new());
    EVP_MD_CTX_copy_ex(copy.get(), md_.get());
    Digest d;
    unsigned int len = d.size();
    EVP_DigestFinal_ex(copy.get(), d.data(), &len);
    return d;
  }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string path_;
  std::unique_ptr<EVP_MD_CTX, MdFree> md_;
};

std::vector<uint8_t> RecordHeader(uint8_t type, uint32_t disk, uint64_t index,
                                  uint64_t length) {
  std::vector<uint8_t> h(kRecHeader);
  h[0] = type;
  std::memcpy(h.data() + 1, &disk, 4);
  std::memcpy(h.data() + 5, &index, 8);
  std::memcpy(h.data() + 13, &length, 8);
  return h;
}

Status WriteRecord(HashedFile& f, uint8_t type, uint32_t disk, uint64_t index,
                   std::span<const uint8_t> payload) {
  TRY(f.Write(RecordHeader(type, disk, index, payload.size())));
  return f.Write(payload);
}

}  // namespace

Status FsRepository::Export(const std::string& id, const std::string& file,
                            const Progress& progress) {
  ASSIGN_OR_RETURN(BackupInfo info, Get(id));
  std::vector<std::unique_ptr<DiskReader>> readers;
  uint64_t total = 0;
  for (const auto& d : info.disks) {
    ASSIGN_OR_RETURN(auto r, OpenDisk(id, d.name));
    total += d.virtual_size;
    readers.push_back(std::move(r));
  }
  std::filesystem::path target(file);
  std::string dir =
      target.parent_path().empty() ? "." : target.parent_path().string();
  std::string tmp = dir + "/.vireo-export-" + RandomHex(6);
  UniqueFd fd(
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return ErrnoErr("create export file in " + dir);
  HashedFile out(std::move(fd), tmp);
  auto fail = [&](Error e) {
    ::unlink(tmp.c_str());
    return tl::unexpected(e.WithContext("export " + id));
  };
  std::vector<uint8_t> head(kMagic, kMagic + 8);
  head.resize(16, 0);
  std::memcpy(head.data() + 8, &kArchiveVersion, 4);
  if (Status st = out.Write(head); !st) return fail(st.error());
  std::string manifest = Json{{"backup", ToJson(info)}}.dump(
      -1, ' ', false, Json::error_handler_t::replace);
  if (Status st = WriteRecord(out, kRecManifest, 0, 0, AsBytes(manifest)); !st)
    return fail(st.error());
  uint64_t done = 0;
  std::vector<uint8_t> chunk, packed;
  for (uint32_t d = 0; d < readers.size(); ++d) {
    for (uint64_t i = 0; i < readers[d]->chunk_count(); ++i) {
      auto present = readers[d]->ReadChunk(i, &chunk);
      if (!present) return fail(present.error());
      if (*present) {
        packed.resize(ZSTD_compressBound(chunk.size()));
        size_t n = ZSTD_compress(packed.data(), packed.size(), chunk.data(),
                                 chunk.size(), 3);
        if (ZSTD_isError(n))
          return fail(Error(ErrorCode::kInternal, "zstd compression failed"));
        packed.resize(n);
        if (Status st = WriteRecord(out, kRecData, d, i, packed); !st)
          return fail(st.error());
      }
      uint64_t cs = readers[d]->chunk_size();
      done += std::min(cs, readers[d]->virtual_size() - i * cs);
      if (progress) progress(done, total);
    }
  }
  Digest sum = out.Current();
  if (Status st = WriteRecord(out, kRecEnd, 0, 0, sum); !st)
    return fail(st.error());
  if (::fsync(out.fd()) != 0) return fail(ErrnoErr("fsync " + tmp).value());
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    return fail(ErrnoErr("rename to " + file).value());
  return FsyncDir(dir);
}

Result<BackupInfo> FsRepository::Import(const std::string& file,
                                        const Progress& progress) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoErr("open " + file);
  off_t file_size = ::lseek(fd.get(), 0, SEEK_END);
  ::lseek(fd.get(), 0, SEEK_SET);
  HashedFile in(std::move(fd), file);
  auto bad = [&](const std::string& what) {
    return Err(ErrorCode::kInvalidArgument, "import " + file + ": " + what);
  };
  std::vector<uint8_t> head(16);
  if (!in.Read(head) || std::memcmp(head.data(), kMagic, 8) != 0)
    return bad("not a vireo backup archive");
  uint32_t version;
  std::memcpy(&version, head.data() + 8, 4);
  if (version != kArchiveVersion)
    return bad("unsupported archive version " + std::to_string(version));

  auto read_header = [&](uint8_t* type, uint32_t* disk, uint64_t* index,
                         uint64_t* len) -> Status {
    std::vector<uint8_t> h(kRecHeader);
    TRY(in.Read(h));
    *type = h[0];
    std::memcpy(disk, h.data() + 1, 4);
    std::memcpy(index, h.data() + 5, 8);
    std::memcpy(len, h.data() + 13, 8);
    return Ok();
  };
  uint8_t type;
  uint32_t disk;
  uint64_t index, len;
  TRY(read_header(&type, &disk, &index, &len));
  if (type != kRecManifest || len > kMaxManifest)
    return bad("manifest record missing");
  std::vector<uint8_t> payload(len);
  TRY(in.Read(payload));
  auto mj = ParseJson(std::string_view(
      reinterpret_cast<const char*>(payload.data()), payload.size()));
  if (!mj || !mj->contains("backup")) return bad("bad manifest record");
  auto info = BackupInfoFromJson((*mj)["backup"]);
  if (!info) return bad(info.error().message());

  // Keep the archived identity unless this store already has that id.
  std::string id = info->id;
  if (!ValidBackupId(id) || state_->LoadManifest(id).has_value() ||
      std::filesystem::exists(state_->ManifestPath(id)))
    id = NewBackupId(info->created_at);
  ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(state_->lock_path(),
                                                       FileLock::Mode::kShared,
                                                       kSharedLockWaitMs));
  auto writer = MakeWriter(state_, std::move(lock), id, info->created_at,
                           info->instance, info->config);
  size_t next_disk = 0;  // disks before this one have been begun
  bool open = false;
  auto advance_to = [&](size_t target) -> Status {
    // Ends the open disk and begins (empty) disks up to `target`.
    while (next_disk <= target && next_disk <= info->disks.size()) {
      if (open) {
        TRY(writer->EndDisk());
        open = false;
      }
      if (next_disk == info->disks.size()) break;
      const DiskInfo& d = info->disks[next_disk];
      // The archive's chunk size (recorded per disk; 4 MiB in archives made
      // before it was) fixes what its record indexes mean.
      TRY(writer->BeginDisk(d.name, d.virtual_size, "", d.chunk_size));
      open = true;
      ++next_disk;
    }
    return Ok();
  };
  std::vector<uint8_t> chunk;
  while (true) {
    Digest before = in.Current();
    TRY(read_header(&type, &disk, &index, &len));
    if (type == kRecEnd) {
      std::vector<uint8_t> sum(len);
      if (len != sum.size() || len != 32) return bad("bad end record");
      TRY(in.Read(sum, /*hash=*/false));
      if (std::memcmp(sum.data(), before.data(), 32) != 0)
        return Err(ErrorCode::kDataLoss,
                   "import " + file + ": checksum mismatch (archive damaged)");
      if (!in.AtEof()) return bad("data after the end record");
      break;
    }
    if (type != kRecData) return bad("unknown record type");
    if (disk >= info->disks.size() || disk + 1 < next_disk ||
        len > ZSTD_compressBound(info->disks[disk].chunk_size))
      return bad("data record out of order or oversized");
    if (disk + 1 > next_disk) TRY(advance_to(disk));
    payload.resize(len);
    TRY(in.Read(payload));
    uint64_t size = info->disks[disk].virtual_size;
    uint64_t cs = info->disks[disk].chunk_size;
    if (index >= (size + cs - 1) / cs)
      return bad("chunk index beyond its disk");
    chunk.resize(std::min(cs, size - index * cs));
    size_t n = ZSTD_decompress(chunk.data(), chunk.size(), payload.data(),
                               payload.size());
    if (ZSTD_isError(n) || n != chunk.size())
      return Err(ErrorCode::kDataLoss,
                 "import " + file + ": damaged chunk record");
    TRY(writer->PutChunk(index, chunk));
    if (progress && file_size > 0)
      progress(static_cast<uint64_t>(::lseek(in.fd(), 0, SEEK_CUR)),
               static_cast<uint64_t>(file_size));
  }
  TRY(advance_to(info->disks.size()));
  return writer->Commit(info->note);
}

}  // namespace vireo::backup
