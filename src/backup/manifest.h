#pragma once

// Backup manifests (backups/<id>.json) and the store config
// (vireo-store.json): JSON encodings, integrity and, for encrypted stores,
// sealing.

#include <optional>
#include <string>
#include <vector>

#include "backup/chunk_store.h"
#include "backup/repository.h"
#include "common/error.h"
#include "common/json.h"

namespace vireo::backup {

// A committed backup: its public info plus one chunk index per disk
// (parallel to info.disks; chunk names, "" for an all-zero chunk).
struct Manifest {
  BackupInfo info;
  std::vector<std::vector<std::string>> indexes;
  // Commit time in microseconds: orders backups made within one second.
  int64_t committed_us = 0;
};

[[nodiscard]] Result<BackupInfo> BackupInfoFromJson(const Json& j);

// Plain stores: {"format","version","sha256","body"} where sha256 covers
// body.dump() so damage is detected. Encrypted stores: {"format","version",
// "id","sealed"}: the body sealed with the manifest key, the id bound as
// authenticated data (instance configs may hold secrets, and a manifest
// must not be renamed to another id).
std::vector<uint8_t> EncodeManifest(const Manifest& m,
                                    const std::optional<StoreKeys>& keys);
// kDataLoss when damaged or tampered with.
[[nodiscard]] Result<Manifest> DecodeManifest(
    const std::string& id, std::span<const uint8_t> file,
    const std::optional<StoreKeys>& keys);

// Backup ids: "<UTC yyyymmddThhmmssZ>-<6 hex>".
std::string NewBackupId(int64_t unix_seconds);
bool ValidBackupId(std::string_view id);

struct StoreConfig {
  int version = 1;
  std::string id;  // random, identifies the store
  int64_t created_at = 0;
  bool encrypted = false;
  std::string key_check;  // hex HMAC(check key, constant); never the key
};
Json ToJson(const StoreConfig& c);
[[nodiscard]] Result<StoreConfig> StoreConfigFromJson(const Json& j);
std::string KeyCheckValue(const StoreKeys& keys);

}  // namespace vireo::backup
