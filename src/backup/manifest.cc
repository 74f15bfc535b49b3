#include "backup/manifest.h"

#include <ctime>

#include "common/random.h"

namespace vireo::backup {

namespace {
constexpr char kManifestFormat[] = "vireo-backup-manifest";
constexpr char kStoreFormat[] = "vireo-backup-store";
constexpr int kVersion = 1;

// Invalid UTF-8 in an instance config must not make dump() throw; the same
// replacement runs when the checksum is recomputed.
std::string DumpBody(const Json& body) {
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Error Damaged(const std::string& id, const std::string& what) {
  return Error(ErrorCode::kDataLoss, "manifest of backup " + id + ": " + what);
}
}  // namespace

bool ValidChunkSize(uint64_t size) {
  return size >= (64u << 10) && size <= kMaxChunkSize &&
         (size & (size - 1)) == 0;
}

Json ToJson(const BackupInfo& b) {
  Json disks = Json::array();
  for (const auto& d : b.disks)
    disks.push_back({{"name", d.name},
                     {"virtual_size", d.virtual_size},
                     {"chunk_size", d.chunk_size},
                     {"chunks_written", d.chunks_written},
                     {"bytes_read", d.bytes_read},
                     {"bytes_new", d.bytes_new}});
  return {{"id", b.id},
          {"instance", b.instance},
          {"created_at", b.created_at},
          {"incremental", b.incremental},
          {"parent", b.parent},
          {"note", b.note},
          {"consistency", b.consistency},
          {"config", b.config},
          {"disks", disks}};
}

Result<BackupInfo> BackupInfoFromJson(const Json& j) {
  try {
    BackupInfo b;
    b.id = j.at("id").get<std::string>();
    b.instance = j.at("instance").get<std::string>();
    b.created_at = j.at("created_at").get<int64_t>();
    b.incremental = j.value("incremental", false);
    b.parent = j.value("parent", "");
    b.note = j.value("note", "");
    b.consistency = j.value("consistency", "");
    b.config = j.value("config", Json::object());
    for (const auto& d : j.at("disks")) {
      DiskInfo di;
      di.name = d.at("name").get<std::string>();
      di.virtual_size = d.at("virtual_size").get<uint64_t>();
      // Absent in manifests (and archives) written before chunk sizes were
      // recorded: those all used 4 MiB.
      di.chunk_size = d.value("chunk_size", kLegacyChunkSize);
      if (!ValidChunkSize(di.chunk_size))
        return Err(ErrorCode::kInvalidArgument,
                   "bad backup info: unsupported chunk size " +
                       std::to_string(di.chunk_size));
      di.chunks_written = d.value("chunks_written", uint64_t{0});
      di.bytes_read = d.value("bytes_read", uint64_t{0});
      di.bytes_new = d.value("bytes_new", uint64_t{0});
      b.disks.push_back(std::move(di));
    }
    return b;
  } catch (const Json::exception& e) {
    return Err(ErrorCode::kInvalidArgument,
               std::string("bad backup info: ") + e.what());
  }
}

std::vector<uint8_t> EncodeManifest(const Manifest& m,
                                    const std::optional<StoreKeys>& keys) {
  Json body = {{"backup", ToJson(m.info)},
               {"index", m.indexes},
               {"committed_us", m.committed_us}};
  std::string text = DumpBody(body);
  Json file = {{"format", kManifestFormat}, {"version", kVersion}};
  if (keys) {
    auto sealed = Seal(keys->manifest, AsBytes(m.info.id), AsBytes(text));
    if (!sealed) std::abort();  // only an OpenSSL malfunction gets here
    file["id"] = m.info.id;
    file["sealed"] = Base64Encode(*sealed);
  } else {
    file["sha256"] = ToHex(Sha256(AsBytes(text)));
    file["body"] = std::move(body);
  }
  std::string out =
      file.dump(1, ' ', false, Json::error_handler_t::replace) + "\n";
  return {out.begin(), out.end()};
}

Result<Manifest> DecodeManifest(const std::string& id,
                                std::span<const uint8_t> bytes,
                                const std::optional<StoreKeys>& keys) {
  auto file = ParseJson(std::string_view(
      reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (!file || !file->is_object() ||
      file->value("format", "") != kManifestFormat)
    return tl::unexpected(Damaged(id, "not a manifest (truncated or damaged)"));
  if (file->value("version", 0) != kVersion)
    return tl::unexpected(Damaged(id, "unsupported manifest version"));
  Json body;
  if (keys) {
    if (file->value("id", "") != id)
      return tl::unexpected(Damaged(id, "id mismatch"));
    if (!file->contains("sealed"))
      return tl::unexpected(Damaged(id, "not encrypted in an encrypted store"));
    auto raw = Base64Decode(file->value("sealed", ""));
    if (!raw) return tl::unexpected(Damaged(id, "bad encoding"));
    auto plain = Open(keys->manifest, AsBytes(id), *raw);
    if (!plain) return tl::unexpected(Damaged(id, "authentication failed"));
    auto parsed = ParseJson(std::string_view(
        reinterpret_cast<const char*>(plain->data()), plain->size()));
    if (!parsed) return tl::unexpected(Damaged(id, "bad body"));
    body = std::move(*parsed);
  } else {
    if (!file->contains("body"))
      return tl::unexpected(Damaged(id, "encrypted manifest in a plain store"));
    body = (*file)["body"];
    if (ToHex(Sha256(AsBytes(DumpBody(body)))) != file->value("sha256", ""))
      return tl::unexpected(Damaged(id, "checksum mismatch"));
  }
  Manifest m;
  if (!body.contains("backup") || !body.contains("index"))
    return tl::unexpected(Damaged(id, "incomplete"));
  auto info = BackupInfoFromJson(body["backup"]);
  if (!info) return tl::unexpected(Damaged(id, info.error().message()));
  m.info = std::move(*info);
  m.committed_us = body.value("committed_us", int64_t{0});
  if (m.info.id != id) return tl::unexpected(Damaged(id, "id mismatch"));
  try {
    m.indexes = body["index"].get<std::vector<std::vector<std::string>>>();
  } catch (const Json::exception&) {
    return tl::unexpected(Damaged(id, "bad chunk index"));
  }
  if (m.indexes.size() != m.info.disks.size())
    return tl::unexpected(Damaged(id, "index does not match disks"));
  for (size_t i = 0; i < m.indexes.size(); ++i) {
    const DiskInfo& d = m.info.disks[i];
    uint64_t want = (d.virtual_size + d.chunk_size - 1) / d.chunk_size;
    if (m.indexes[i].size() != want)
      return tl::unexpected(
          Damaged(id, "index length does not match disk size"));
    for (const auto& name : m.indexes[i])
      if (!name.empty() && !ChunkStore::ValidName(name))
        return tl::unexpected(Damaged(id, "bad chunk name in index"));
  }
  return m;
}

std::string NewBackupId(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf) + "-" + RandomHex(3);
}

bool ValidBackupId(std::string_view id) {
  // yyyymmddThhmmssZ-xxxxxx
  if (id.size() != 23 || id[8] != 'T' || id[15] != 'Z' || id[16] != '-')
    return false;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 15 || i == 16) continue;
    char c = id[i];
    bool digit = c >= '0' && c <= '9';
    if (i < 16 && !digit) return false;
    if (i > 16 && !digit && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

Json ToJson(const StoreConfig& c) {
  return {{"format", kStoreFormat},
          {"version", c.version},
          {"id", c.id},
          {"created_at", c.created_at},
          {"encrypted", c.encrypted},
          {"key_check", c.key_check},
          // The largest chunk size backups in this store may use (each
          // manifest records its disks' own); 4 MiB since version 1.
          {"chunk_size", kMaxChunkSize}};
}

Result<StoreConfig> StoreConfigFromJson(const Json& j) {
  if (!j.is_object() || j.value("format", "") != kStoreFormat)
    return Err(ErrorCode::kDataLoss, "not a vireo backup store config");
  StoreConfig c;
  c.version = j.value("version", 0);
  if (c.version != kVersion)
    return Err(ErrorCode::kFailedPrecondition,
               "unsupported backup store version " + std::to_string(c.version));
  if (j.value("chunk_size", uint64_t{0}) != kMaxChunkSize)
    return Err(ErrorCode::kFailedPrecondition, "unsupported chunk size");
  c.id = j.value("id", "");
  c.created_at = j.value("created_at", int64_t{0});
  c.encrypted = j.value("encrypted", false);
  c.key_check = j.value("key_check", "");
  return c;
}

std::string KeyCheckValue(const StoreKeys& keys) {
  return ToHex(
      HmacSha256(keys.check, AsBytes("vireo backup store key check v1")));
}

}  // namespace vireo::backup
