#include "core/backup_store_service.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>

#include "common/log.h"
#include "common/random.h"

namespace vireo {

namespace fs = std::filesystem;

namespace {

constexpr const char* kKind = "backup_store";

Result<BackupStoreSpec> SpecFromJson(const Json& j) {
  try {
    BackupStoreSpec s;
    s.name = j.at("name").get<std::string>();
    s.path = j.at("path").get<std::string>();
    s.encrypt_key_file = j.value("encrypt_key_file", "");
    s.created_at = j.value("created_at", int64_t{0});
    return s;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal,
               std::string("bad backup store record: ") + e.what());
  }
}

Result<std::optional<backup::Key>> LoadKey(const BackupStoreSpec& spec) {
  if (spec.encrypt_key_file.empty()) return std::optional<backup::Key>();
  auto key = backup::LoadKeyFile(spec.encrypt_key_file);
  if (!key) {
    Error e = key.error();
    e.WithContext("backup store '" + spec.name + "': encryption key file " +
                  spec.encrypt_key_file);
    return tl::unexpected(e);
  }
  return std::optional<backup::Key>(*key);
}

// The path must be an existing directory this process can create files in;
// probing with a real file also catches read-only mounts and root-owned
// paths under /proc or /sys that access(2) misjudges for root.
Status CheckDirectory(const std::string& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    return Err(ErrorCode::kInvalidArgument,
               "backup store path " + path +
                   " does not exist (create the directory first)");
  if (!fs::is_directory(st))
    return Err(ErrorCode::kInvalidArgument,
               "backup store path " + path + " is not a directory");
  std::string probe = path + "/.vireo-probe-" + RandomHex(4);
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return Err(ErrorCode::kInvalidArgument,
               "backup store path " + path + " is not writable (" +
                   std::string(strerror(errno)) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
  return Ok();
}

}  // namespace

Status ValidateBackupStoreName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63 &&
            std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                c == '_' || c == '.');
  if (!ok)
    return Err(ErrorCode::kInvalidArgument,
               "invalid backup store name '" + name +
                   "': use 1-63 letters, digits, '-', '_' or '.', starting "
                   "with a letter or digit");
  return Ok();
}

Json ToJson(const BackupStoreSpec& s) {
  return {{"name", s.name},
          {"path", s.path},
          {"encrypt_key_file", s.encrypt_key_file},
          {"created_at", s.created_at}};
}

BackupStoreService::BackupStoreService(Store* store,
                                       OperationManager* operations)
    : store_(store), operations_(operations) {}

Result<Json> BackupStoreService::Create(const BackupStoreSpec& in) {
  BackupStoreSpec spec = in;
  TRY(ValidateBackupStoreName(spec.name));
  if (spec.path.empty() || !fs::path(spec.path).is_absolute())
    return Err(ErrorCode::kInvalidArgument,
               "backup store path must be absolute");
  spec.path = fs::path(spec.path).lexically_normal().string();
  if (spec.path.size() > 1 && spec.path.back() == '/') spec.path.pop_back();
  if (!spec.encrypt_key_file.empty() &&
      !fs::path(spec.encrypt_key_file).is_absolute())
    return Err(ErrorCode::kInvalidArgument,
               "encryption key file path must be absolute");
  spec.created_at = ::time(nullptr);

  // One create at a time: the name and path checks must hold until the
  // record is written.
  std::unique_lock lock(create_mu_);
  if (store_->GetObject(kKind, spec.name))
    return Err(ErrorCode::kAlreadyExists,
               "backup store '" + spec.name + "' already exists");
  ASSIGN_OR_RETURN(auto records, store_->ListObjects(kKind));
  for (const Json& r : records)
    if (r.value("path", "") == spec.path)
      return Err(ErrorCode::kAlreadyExists, "backup store '" +
                                                r.value("name", "") +
                                                "' already uses " + spec.path);
  TRY(CheckDirectory(spec.path));
  auto key = LoadKey(spec);
  if (!key) {
    Error e = key.error();
    if (e.code() == ErrorCode::kIo || e.code() == ErrorCode::kNotFound)
      e = Error(ErrorCode::kInvalidArgument, e.ToString());
    return tl::unexpected(e);
  }
  std::unique_ptr<backup::Repository> repo;
  if (fs::exists(spec.path + "/vireo-store.json")) {
    // Adopt an existing store (moved disk, reinstalled host): the key must
    // match it.
    ASSIGN_OR_RETURN(repo, backup::OpenRepository(spec.path, *key));
  } else {
    ASSIGN_OR_RETURN(repo, backup::CreateRepository(spec.path, *key));
  }
  TRY(store_->CreateObject(kKind, spec.name, ToJson(spec)));
  {
    std::lock_guard open_lock(mu_);
    open_[spec.name] = std::move(repo);
  }
  lock.unlock();
  LOG_INFO("backup store {} created at {}{}", spec.name, spec.path,
           spec.encrypt_key_file.empty() ? "" : " (encrypted)");
  return Describe(spec);
}

Result<BackupStoreSpec> BackupStoreService::Load(const std::string& name) {
  TRY(ValidateBackupStoreName(name));
  auto j = store_->GetObject(kKind, name);
  if (!j) {
    if (j.error().code() == ErrorCode::kNotFound)
      return Err(ErrorCode::kNotFound, "backup store '" + name + "' not found");
    return tl::unexpected(j.error());
  }
  return SpecFromJson(*j);
}

Result<std::shared_ptr<backup::Repository>> BackupStoreService::OpenSpec(
    const BackupStoreSpec& spec) {
  {
    std::lock_guard lock(mu_);
    auto it = open_.find(spec.name);
    if (it != open_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(auto key, LoadKey(spec));
  auto repo = backup::OpenRepository(spec.path, key);
  if (!repo) {
    Error e = repo.error();
    e.WithContext("backup store '" + spec.name + "'");
    return tl::unexpected(e);
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = open_.emplace(
      spec.name, std::shared_ptr<backup::Repository>(std::move(*repo)));
  return it->second;
}

Result<std::string> BackupStoreService::Resolve(const std::string& name) {
  if (!name.empty()) {
    ASSIGN_OR_RETURN(BackupStoreSpec spec, Load(name));
    return spec.name;
  }
  ASSIGN_OR_RETURN(auto records, store_->ListObjects(kKind));
  if (records.empty())
    return Err(ErrorCode::kNotFound,
               "no backup store exists (create one with `vireo backup-store "
               "create NAME PATH`)");
  std::vector<BackupStoreSpec> specs;
  for (const Json& r : records) {
    auto s = SpecFromJson(r);
    if (s) specs.push_back(*s);
  }
  if (specs.empty())
    return Err(ErrorCode::kInternal, "backup store records are damaged");
  auto first = std::min_element(
      specs.begin(), specs.end(), [](const auto& a, const auto& b) {
        return std::tie(a.created_at, a.name) < std::tie(b.created_at, b.name);
      });
  return first->name;
}

Result<std::shared_ptr<backup::Repository>> BackupStoreService::Open(
    const std::string& name) {
  ASSIGN_OR_RETURN(std::string resolved, Resolve(name));
  ASSIGN_OR_RETURN(BackupStoreSpec spec, Load(resolved));
  return OpenSpec(spec);
}

Result<Json> BackupStoreService::Describe(const BackupStoreSpec& spec) {
  Json j = ToJson(spec);
  j["encrypted"] = !spec.encrypt_key_file.empty();
  auto repo = OpenSpec(spec);
  if (!repo) {
    j["status"] = "error";
    j["error"] = repo.error().message();
    return j;
  }
  auto stats = (*repo)->Stats();
  if (!stats) {
    j["status"] = "error";
    j["error"] = stats.error().message();
    return j;
  }
  j["status"] = "ok";
  j["encrypted"] = (*repo)->encrypted();
  j.update(backup::ToJson(*stats));
  return j;
}

Result<std::vector<Json>> BackupStoreService::List() {
  ASSIGN_OR_RETURN(auto records, store_->ListObjects(kKind));
  std::vector<Json> out;
  for (const Json& r : records) {
    ASSIGN_OR_RETURN(BackupStoreSpec spec, SpecFromJson(r));
    ASSIGN_OR_RETURN(Json d, Describe(spec));
    out.push_back(std::move(d));
  }
  return out;
}

Result<Json> BackupStoreService::Info(const std::string& name) {
  ASSIGN_OR_RETURN(std::string resolved, Resolve(name));
  ASSIGN_OR_RETURN(BackupStoreSpec spec, Load(resolved));
  return Describe(spec);
}

Status BackupStoreService::Delete(const std::string& name) {
  ASSIGN_OR_RETURN(BackupStoreSpec spec, Load(name));
  TRY(store_->DeleteObject(kKind, spec.name));
  std::lock_guard lock(mu_);
  open_.erase(spec.name);
  LOG_INFO("backup store {} removed (data left in {})", spec.name, spec.path);
  return Ok();
}

Result<std::vector<Json>> BackupStoreService::ListBackups(
    const std::string& store, const std::string& instance) {
  ASSIGN_OR_RETURN(auto repo, Open(store));
  ASSIGN_OR_RETURN(auto list, repo->List(instance));
  std::vector<Json> out;
  for (const auto& b : list) out.push_back(backup::ToJson(b));
  return out;
}

Result<Json> BackupStoreService::GetBackup(const std::string& store,
                                           const std::string& id) {
  ASSIGN_OR_RETURN(auto repo, Open(store));
  ASSIGN_OR_RETURN(auto info, repo->Get(id));
  return backup::ToJson(info);
}

Status BackupStoreService::DeleteBackup(const std::string& store,
                                        const std::string& id) {
  ASSIGN_OR_RETURN(auto repo, Open(store));
  return repo->Delete(id);
}

Result<Operation> BackupStoreService::StartOnStore(
    const std::string& store, const std::string& description,
    std::function<Result<Json>(backup::Repository&, const backup::Progress&)>
        work) {
  ASSIGN_OR_RETURN(std::string name, Resolve(store));
  ASSIGN_OR_RETURN(auto repo, Open(name));
  Json resources = {{"backup_stores", {"/1.0/backup-stores/" + name}}};
  OperationManager* ops = operations_;
  std::string stage = description;
  return operations_->Start(
      description, resources,
      [repo, ops, stage, work = std::move(work)]() -> Result<Json> {
        std::string id = OperationManager::CurrentId();
        backup::Progress progress = [ops, id, stage](uint64_t done,
                                                     uint64_t total) {
          ops->SetProgress(id, stage, done, total);
        };
        return work(*repo, progress);
      });
}

Result<Operation> BackupStoreService::BeginVerify(const std::string& store) {
  return StartOnStore(store, "Verifying backups",
                      [](backup::Repository& repo,
                         const backup::Progress& progress) -> Result<Json> {
                        ASSIGN_OR_RETURN(auto report, repo.Verify(progress));
                        return backup::ToJson(report);
                      });
}

Result<Operation> BackupStoreService::BeginPrune(
    const std::string& store, const backup::PrunePolicy& policy) {
  if (policy.keep_last < 0 || policy.keep_daily < 0 || policy.keep_weekly < 0 ||
      policy.keep_monthly < 0)
    return Err(ErrorCode::kInvalidArgument, "keep counts must not be negative");
  if (policy.keep_last == 0 && policy.keep_daily == 0 &&
      policy.keep_weekly == 0 && policy.keep_monthly == 0)
    return Err(ErrorCode::kInvalidArgument,
               "prune needs at least one of keep_last, keep_daily, "
               "keep_weekly, keep_monthly");
  return StartOnStore(store, "Pruning backups",
                      [policy](backup::Repository& repo,
                               const backup::Progress&) -> Result<Json> {
                        ASSIGN_OR_RETURN(auto report, repo.Prune(policy));
                        Json j = backup::ToJson(report);
                        j["dry_run"] = policy.dry_run;
                        return j;
                      });
}

Result<Operation> BackupStoreService::BeginGc(const std::string& store) {
  return StartOnStore(store, "Collecting unused backup chunks",
                      [](backup::Repository& repo,
                         const backup::Progress& progress) -> Result<Json> {
                        ASSIGN_OR_RETURN(auto report, repo.Gc(progress));
                        return backup::ToJson(report);
                      });
}

Result<Operation> BackupStoreService::BeginExport(const std::string& store,
                                                  const std::string& id,
                                                  const std::string& file) {
  if (file.empty() || !fs::path(file).is_absolute())
    return Err(ErrorCode::kInvalidArgument,
               "export file path must be absolute");
  std::error_code ec;
  if (fs::exists(file, ec))
    return Err(ErrorCode::kAlreadyExists,
               "export file " + file + " already exists");
  fs::path parent = fs::path(file).parent_path();
  if (!fs::is_directory(parent, ec))
    return Err(ErrorCode::kInvalidArgument,
               "directory " + parent.string() + " does not exist");
  // Fail fast on an unknown backup rather than in the operation.
  ASSIGN_OR_RETURN(auto repo, Open(store));
  TRY(repo->Get(id));
  return StartOnStore(
      store, "Exporting backup " + id,
      [id, file](backup::Repository& repo,
                 const backup::Progress& progress) -> Result<Json> {
        TRY(repo.Export(id, file, progress));
        std::error_code ec;
        uint64_t size = fs::file_size(file, ec);
        return Json{{"id", id}, {"file", file}, {"size", ec ? 0 : size}};
      });
}

Result<Operation> BackupStoreService::BeginImport(const std::string& store,
                                                  const std::string& file) {
  if (file.empty() || !fs::path(file).is_absolute())
    return Err(ErrorCode::kInvalidArgument,
               "import file path must be absolute");
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return Err(ErrorCode::kInvalidArgument,
               "import file " + file + " does not exist or is not a file");
  return StartOnStore(store, "Importing backup",
                      [file](backup::Repository& repo,
                             const backup::Progress& progress) -> Result<Json> {
                        ASSIGN_OR_RETURN(auto info,
                                         repo.Import(file, progress));
                        return backup::ToJson(info);
                      });
}

}  // namespace vireo
