// Verify, prune, delete and gc of an FsRepository, plus the JSON of their
// reports and the "unsupported" defaults of the Repository interface.

#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "backup/fs_repository.h"
#include "backup/prune_policy.h"
#include "common/log.h"

namespace vireo::backup {

namespace fs = std::filesystem;

// How long gc waits for running writers/readers before reporting busy.
inline constexpr int kExclusiveLockWaitMs = 2'000;

Result<VerifyReport> FsRepository::Verify(const Progress& progress) {
  ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(state_->lock_path(),
                                                       FileLock::Mode::kShared,
                                                       kSharedLockWaitMs));
  ASSIGN_OR_RETURN(auto ids, state_->ListIds());
  // Manifests first, ordered oldest first like List() (damaged ones, whose
  // time is unknown, by id).
  std::vector<
      std::pair<std::tuple<int64_t, int64_t, std::string>, Result<Manifest>>>
      manifests;
  for (const auto& id : ids) {
    auto m = state_->LoadManifest(id);
    if (!m && m.error().code() == ErrorCode::kNotFound) continue;  // deleted
    std::tuple<int64_t, int64_t, std::string> key{0, 0, id};
    if (m) key = {m->info.created_at, m->committed_us, id};
    manifests.emplace_back(std::move(key), std::move(m));
  }
  std::sort(manifests.begin(), manifests.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  VerifyReport report;
  // Each chunk is read once however many backups share it; its users are
  // remembered so a damaged chunk marks all of them.
  std::map<std::string, std::set<size_t>> users;
  for (auto& [key, m] : manifests) {
    BackupStatus status;
    status.id = std::get<2>(key);
    if (!m) {
      status.ok = false;
      status.errors.push_back(m.error().message());
    } else {
      status.instance = m->info.instance;
      for (const auto& index : m->indexes)
        for (const auto& name : index)
          if (!name.empty()) users[name].insert(report.backups.size());
    }
    report.backups.push_back(std::move(status));
  }
  uint64_t done = 0;
  for (const auto& [name, who] : users) {
    auto data = state_->chunks.Get(name);
    if (data) {
      report.bytes_checked += data->size();
    } else {
      for (size_t i : who) {
        report.backups[i].ok = false;
        report.backups[i].errors.push_back(data.error().message());
      }
    }
    ++report.chunks_checked;
    if (progress) progress(++done, users.size());
  }
  for (const auto& b : report.backups)
    if (!b.ok) report.damaged.push_back(b.id);
  return report;
}

Status FsRepository::Delete(const std::string& id) {
  // Removing a manifest never breaks a writer or reader (they hold their
  // chunk lists in memory and the shared lock keeps gc away), so the shared
  // lock suffices; it only waits out a running gc.
  ASSIGN_OR_RETURN(FileLock lock, FileLock::TryAcquire(state_->lock_path(),
                                                       FileLock::Mode::kShared,
                                                       kSharedLockWaitMs));
  if (!ValidBackupId(id))
    return Err(ErrorCode::kNotFound, "backup " + id + " not found");
  std::string path = state_->ManifestPath(id);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT)
      return Err(ErrorCode::kNotFound, "backup " + id + " not found");
    return ErrnoErr("remove " + path);
  }
  return FsyncDir(state_->backups_dir());
}

Result<PruneReport> FsRepository::Prune(const PrunePolicy& policy) {
  ASSIGN_OR_RETURN(auto all, List(policy.instance));
  std::map<std::string, std::vector<PruneCandidate>> by_instance;
  for (const auto& b : all)
    by_instance[b.instance].push_back({b.id, b.created_at});
  PruneReport report;
  for (auto& [instance, backups] : by_instance) {
    PruneReport r = SelectForPrune(std::move(backups), policy);
    report.kept.insert(report.kept.end(), r.kept.begin(), r.kept.end());
    report.removed.insert(report.removed.end(), r.removed.begin(),
                          r.removed.end());
  }
  if (!policy.dry_run) {
    for (const auto& id : report.removed) {
      Status st = Delete(id);
      if (!st && st.error().code() != ErrorCode::kNotFound)
        return tl::unexpected(st.error());
    }
  }
  return report;
}

Result<GcReport> FsRepository::Gc(const Progress& progress) {
  ASSIGN_OR_RETURN(
      FileLock lock,
      FileLock::TryAcquire(state_->lock_path(), FileLock::Mode::kExclusive,
                           kExclusiveLockWaitMs));
  // Mark: every chunk any manifest references. A manifest that cannot be
  // read stops gc: deleting chunks it might reference would turn a damaged
  // manifest into a lost backup.
  ASSIGN_OR_RETURN(auto ids, state_->ListIds());
  std::set<std::string> referenced;
  for (const auto& id : ids) {
    auto m = state_->LoadManifest(id);
    if (!m) {
      if (m.error().code() == ErrorCode::kNotFound) continue;
      Error e = m.error();
      e.WithContext("gc stopped, nothing removed (delete the damaged backup " +
                    id + " first)");
      return tl::unexpected(e);
    }
    for (const auto& index : m->indexes)
      for (const auto& name : index)
        if (!name.empty()) referenced.insert(name);
  }
  // Sweep. Holding the exclusive lock, no writer exists, so every temp file
  // is a crash leftover and every unreferenced chunk is garbage.
  GcReport report;
  std::vector<ChunkStore::Entry> garbage;
  std::vector<std::string> temps;
  TRY(state_->chunks.ForEach(
      [&](const ChunkStore::Entry& e) {
        if (referenced.count(e.name) != 0) {
          ++report.kept_chunks;
          report.kept_bytes += e.size;
        } else {
          garbage.push_back(e);
        }
      },
      [&](const std::string& path) { temps.push_back(path); }));
  std::error_code ec;
  for (fs::directory_iterator it(state_->backups_dir(), ec), end;
       !ec && it != end; it.increment(ec))
    if (it->path().filename().string().starts_with(kTempPrefix))
      temps.push_back(it->path().string());
  for (const auto& t : temps)
    if (::unlink(t.c_str()) == 0) ++report.removed_temp_files;
  uint64_t done = 0;
  for (const auto& e : garbage) {
    std::string path = state_->chunks.PathOf(e.name);
    if (::unlink(path.c_str()) == 0) {
      ++report.removed_chunks;
      report.removed_bytes += e.size;
    } else {
      LOG_WARN("backup gc: remove {}: {}", path, strerror(errno));
    }
    if (progress) progress(++done, garbage.size());
  }
  return report;
}

// --- JSON ---

Json ToJson(const VerifyReport& r) {
  Json backups = Json::array();
  for (const auto& b : r.backups)
    backups.push_back({{"id", b.id},
                       {"instance", b.instance},
                       {"ok", b.ok},
                       {"errors", b.errors}});
  return {{"chunks_checked", r.chunks_checked},
          {"bytes_checked", r.bytes_checked},
          {"backups", backups},
          {"damaged", r.damaged},
          {"ok", r.damaged.empty()}};
}

Json ToJson(const PruneReport& r) {
  return {{"kept", r.kept}, {"removed", r.removed}};
}

Json ToJson(const GcReport& r) {
  return {{"removed_chunks", r.removed_chunks},
          {"removed_bytes", r.removed_bytes},
          {"kept_chunks", r.kept_chunks},
          {"kept_bytes", r.kept_bytes},
          {"removed_temp_files", r.removed_temp_files}};
}

Json ToJson(const StoreStats& s) {
  return {{"backups", s.backups},
          {"chunks", s.chunks},
          {"bytes_on_disk", s.bytes_on_disk}};
}

// --- Defaults of the interface ---

static Error Unsupported(const char* what) {
  return Error(ErrorCode::kFailedPrecondition,
               std::string(what) + " is not supported by this repository");
}
Result<VerifyReport> Repository::Verify(const Progress&) {
  return tl::unexpected(Unsupported("verify"));
}
Result<PruneReport> Repository::Prune(const PrunePolicy&) {
  return tl::unexpected(Unsupported("prune"));
}
Status Repository::Delete(const std::string&) {
  return tl::unexpected(Unsupported("delete"));
}
Result<GcReport> Repository::Gc(const Progress&) {
  return tl::unexpected(Unsupported("gc"));
}
Status Repository::Export(const std::string&, const std::string&,
                          const Progress&) {
  return tl::unexpected(Unsupported("export"));
}
Result<BackupInfo> Repository::Import(const std::string&, const Progress&) {
  return tl::unexpected(Unsupported("import"));
}
Result<StoreStats> Repository::Stats() {
  return tl::unexpected(Unsupported("stats"));
}

}  // namespace vireo::backup
