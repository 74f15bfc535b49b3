#include "core/backup_service.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <mutex>

#include "common/log.h"
#include "common/random.h"
#include "core/backup_export.h"
#include "core/nbd_chunk_reader.h"

namespace vireo {

namespace {

namespace fs = std::filesystem;

// Store object remembering, per instance and backup store, the generation
// of the dirty bitmaps that track writes since the last committed backup.
constexpr const char* kBitmapKind = "backup_bitmap";

// Bitmap names must be stable per store but short: FNV-1a of its path.
std::string StoreKey(const std::string& path) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : path) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

Json DiskInfoJson(const backup::DiskInfo& d) {
  return {{"name", d.name},
          {"virtual_size", d.virtual_size},
          {"chunk_size", d.chunk_size},
          {"chunks_written", d.chunks_written},
          {"bytes_read", d.bytes_read},
          {"bytes_new", d.bytes_new}};
}

}  // namespace

Json BackupInfoToJson(const backup::BackupInfo& info) {
  Json disks = Json::array();
  for (const auto& d : info.disks) disks.push_back(DiskInfoJson(d));
  return {{"id", info.id},
          {"instance", info.instance},
          {"created_at", info.created_at},
          {"incremental", info.incremental},
          {"parent", info.parent},
          {"note", info.note},
          {"consistency", info.consistency},
          {"config", info.config},
          {"disks", disks}};
}

BackupService::BackupService(Store* store, VmEngine* engine,
                             InstanceService* instances, OperationManager* ops,
                             OpenStore open, Options options)
    : store_(store),
      engine_(engine),
      instances_(instances),
      ops_(ops),
      open_(std::move(open)),
      options_(std::move(options)),
      read_limiter_(options_.read_rate_limit) {}

BackupService::~BackupService() { StopScheduler(); }

void BackupService::StopScheduler() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
}

Status BackupService::CheckDisks(const Instance& inst) {
  for (const DiskConfig& d : inst.config.disks) {
    if (d.media != "disk") continue;
    struct stat st;
    if (::stat(d.path.c_str(), &st) != 0)
      return Err(ErrorCode::kFailedPrecondition,
                 "cannot back up '" + inst.name() + "': the file of disk '" +
                     d.name + "' (" + d.path +
                     ") is missing: " + strerror(errno));
  }
  return Ok();
}

Result<Operation> BackupService::Start(const std::string& instance,
                                       const std::string& store) {
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  ASSIGN_OR_RETURN(auto repo, open_(store));
  (void)repo;
  TRY(CheckDisks(inst));
  Json resources = {{"instances", Json::array({"/1.0/instances/" + instance})}};
  return ops_->Start("Backing up instance", resources, Json::object(), "task",
                     [this, instance, store]() -> Result<Json> {
                       ASSIGN_OR_RETURN(backup::BackupInfo info,
                                        Backup(instance, store));
                       return BackupInfoToJson(info);
                     });
}

Result<backup::BackupInfo> BackupService::Backup(const std::string& instance,
                                                 const std::string& store) {
  ASSIGN_OR_RETURN(auto repo, open_(store));
  // Held throughout: the VM can be neither deleted nor started/stopped
  // while its disks are read.
  auto lock = instances_->LockInstance(instance);
  ASSIGN_OR_RETURN(Instance inst, instances_->Get(instance));
  TRY(CheckDisks(inst));
  const std::string op_id = OperationManager::CurrentId();
  // Wall time per stage, logged at the end: where a backup's time goes.
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>>
      stages;
  auto stage = [&](const std::string& s, uint64_t done, uint64_t total) {
    if (stages.empty() || stages.back().first != s)
      stages.emplace_back(s, std::chrono::steady_clock::now());
    if (!op_id.empty()) ops_->SetProgress(op_id, s, done, total);
  };
  auto stage_times = [&] {
    std::string out;
    auto end = std::chrono::steady_clock::now();
    for (size_t i = 0; i < stages.size(); ++i) {
      auto until = i + 1 < stages.size() ? stages[i + 1].second : end;
      out +=
          (out.empty() ? "" : ", ") + stages[i].first + " " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                             until - stages[i].second)
                             .count()) +
          " ms";
    }
    return out;
  };
  stage("preparing", 0, 1);

  const std::string key = StoreKey(repo->path());
  const std::string record_name = inst.id + "." + key;
  const std::string prefix = "vireo-" + key + "-";
  // The last committed backup and the bitmap generation tracking since.
  std::string base_id, trusted_gen;
  std::map<std::string, uint64_t> base_sizes, base_chunk_sizes;
  std::string no_base_reason = "first backup of this instance in the store";
  if (auto rec = store_->GetObject(kBitmapKind, record_name)) {
    base_id = rec->value("backup", "");
    trusted_gen = rec->value("generation", "");
    auto base = repo->Get(base_id);
    if (!base) {
      no_base_reason = "base backup " + base_id + " is gone";
      base_id.clear();
    } else {
      for (const auto& d : base->disks) {
        base_sizes[d.name] = d.virtual_size;
        base_chunk_sizes[d.name] = d.chunk_size;
      }
    }
  }

  std::vector<ExportRequest> reqs;
  for (const DiskConfig& d : inst.config.disks) {
    if (d.media != "disk") continue;
    ExportRequest r{d.name, d.path, d.format, ""};
    if (!base_id.empty() && base_sizes.count(d.name))
      r.trusted_bitmap = prefix + trusted_gen;
    reqs.push_back(r);
  }
  if (reqs.empty())
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + instance + "' has no disks to back up");

  const std::string gen = RandomHex(4);
  ExportOptions eo;
  // Not under the VM's run dir: that is root-only (mode 0700, it holds the
  // VNC socket), and QEMU opens the fleecing images after dropping to the
  // QEMU user.
  eo.work_dir = options_.work_dir + "/live-" + inst.id;
  eo.qemu_user = options_.qemu_user;
  eo.bitmap_prefix = prefix;
  eo.new_bitmap = prefix + gen;
  bool live = engine_->IsRunning(instance);
  std::unique_ptr<DiskExport> exports;
  if (live) {
    ASSIGN_OR_RETURN(exports, StartLiveExport(engine_, instance, reqs, eo));
  } else {
    // A stopped VM's runtime dir may not exist.
    eo.work_dir = options_.work_dir + "/export-" + inst.id;
    ASSIGN_OR_RETURN(exports, StartOfflineExport(reqs, eo));
  }

  ASSIGN_OR_RETURN(auto writer,
                   repo->BeginBackup(inst.name(), ToJson(inst.config)));
  std::vector<std::string> notes;
  std::map<std::string, uint64_t> bytes_read;
  bool any_incremental = false;
  for (const ExportedDisk& e : exports->disks()) {
    NbdSource src = e.source;
    uint64_t size = 0;
    std::string reason = e.full_reason;
    const uint64_t chunk_size = backup::kChunkSize;
    if (!src.bitmap.empty() && base_chunk_sizes[e.name] != chunk_size) {
      // The base's index cannot be reused chunk for chunk (e.g. a backup
      // made with 4 MiB chunks before they became smaller).
      reason = "base backup " + base_id + " uses " +
               std::to_string(base_chunk_sizes[e.name] >> 10) +
               " KiB chunks, this backup " + std::to_string(chunk_size >> 10) +
               " KiB";
      src.bitmap.clear();
    }
    ASSIGN_OR_RETURN(std::vector<uint64_t> chunks,
                     ChunksToRead(src, chunk_size, &size));
    if (!src.bitmap.empty() && base_sizes[e.name] != size) {
      reason = "disk size changed";
      src.bitmap.clear();
      ASSIGN_OR_RETURN(chunks, ChunksToRead(src, chunk_size, &size));
    }
    std::string base;
    if (!src.bitmap.empty()) {
      base = base_id;
      any_incremental = true;
    } else {
      if (reason.empty() || reason.starts_with("no earlier backup"))
        reason = base_id.empty() ? no_base_reason : reason;
      notes.push_back("full read of " + e.name + ": " + reason);
    }
    TRY_CTX(writer->BeginDisk(e.name, size, base, chunk_size),
            "disk " + e.name);
    std::string what = "reading disk " + e.name;
    std::mutex paced_mu;
    uint64_t paced = 0;  // bytes of this disk already charged to the limiter
    auto progress = [&](uint64_t done, uint64_t total) {
      uint64_t delta = 0;
      {
        std::lock_guard lock(paced_mu);
        if (done > paced) delta = done - paced, paced = done;
      }
      // Sleeping here holds back the reader threads, which is the point.
      read_limiter_.Consume(delta);
      stage(what, done, total);
    };
    ASSIGN_OR_RETURN(ChunkReadStats stats,
                     CopyChunks(src, size, chunk_size, chunks, writer.get(),
                                options_.connections, progress));
    TRY_CTX(writer->EndDisk(), "disk " + e.name);
    bytes_read[e.name] = stats.bytes_read;
    LOG_INFO("backup {}: disk {}: {} of {} chunks read ({} bytes){}", instance,
             e.name, stats.chunks_read,
             stats.chunks_read + stats.chunks_skipped, stats.bytes_read,
             base.empty() ? ", full" : ", incremental");
  }
  std::string note;
  for (const auto& n : notes) note += (note.empty() ? "" : "; ") + n;
  const std::string how = exports->consistency();
  if (!how.empty()) note += (note.empty() ? "" : "; ") + how;
  // GuestFreeze::describe() leads with the verdict; the rest is the why.
  writer->SetConsistency(!live ? "stopped"
                         : how.starts_with("filesystem-consistent")
                             ? "filesystem"
                             : "crash");
  stage("committing", 0, 1);
  ASSIGN_OR_RETURN(backup::BackupInfo info, writer->Commit(note));
  writer.reset();
  for (auto& d : info.disks) d.bytes_read = bytes_read[d.name];
  info.incremental = any_incremental || info.incremental;
  // Bitmaps first, then the record: a crash in between leaves a record
  // naming a bitmap that no longer exists, which only costs a full read.
  stage("finishing", 0, 1);
  exports->Finish(true);
  LOG_INFO("backup {}: {}", instance, stage_times());
  Json rec = {{"generation", gen},
              {"backup", info.id},
              {"store_path", repo->path()},
              {"instance", inst.name()}};
  auto saved = store_->UpdateObject(kBitmapKind, record_name, rec);
  if (!saved && saved.error().code() == ErrorCode::kNotFound)
    saved = store_->CreateObject(kBitmapKind, record_name, rec);
  if (!saved)
    LOG_WARN("backup {}: could not record bitmap generation: {}", instance,
             saved.error().ToString());
  return info;
}

Result<Operation> BackupService::Restore(const std::string& store,
                                         const std::string& id,
                                         const std::string& new_name) {
  ASSIGN_OR_RETURN(auto repo, open_(store));
  ASSIGN_OR_RETURN(backup::BackupInfo info, repo->Get(id));
  std::string name = new_name.empty() ? info.instance : new_name;
  auto existing = instances_->Get(name);
  if (existing)
    return Err(
        ErrorCode::kAlreadyExists,
        "instance '" + name + "' already exists; restore under another name");
  if (existing.error().code() != ErrorCode::kNotFound)
    return tl::unexpected(existing.error());
  Json resources = {{"instances", Json::array({"/1.0/instances/" + name})}};
  return ops_->Start("Restoring backup", resources, Json::object(), "task",
                     [this, repo, info, name]() -> Result<Json> {
                       return DoRestore(repo, info, name);
                     });
}

}  // namespace vireo
