#include "store/sqlite/sqlite_store.h"

#include <utility>

#include "common/json.h"
#include "store/sqlite/migrations.h"

namespace vireo {

using sqlite::Statement;
using sqlite::Transaction;

namespace {

constexpr int kBusyTimeoutMs = 5000;

tl::unexpected<Error> InstanceNotFound(std::string_view name) {
  return Err(ErrorCode::kNotFound,
             "instance '" + std::string(name) + "' not found");
}

// Reads one instances row (name, id, created_at, config, status). A row that
// does not parse is reported, not skipped: silently hiding an instance would
// leak its VM and disks.
Result<Instance> InstanceFromRow(const Statement& stmt) {
  std::string name = stmt.ColumnText(0);
  auto fail = [&](const Error& e) {
    return Err(ErrorCode::kInternal,
               "stored instance '" + name + "' is damaged: " + e.message());
  };
  Instance inst;
  inst.id = stmt.ColumnText(1);
  inst.created_at = stmt.ColumnInt(2);
  auto config_json = ParseJson(stmt.ColumnText(3));
  if (!config_json) return fail(config_json.error());
  auto config = InstanceConfigFromJson(*config_json);
  if (!config) return fail(config.error());
  auto status_json = ParseJson(stmt.ColumnText(4));
  if (!status_json) return fail(status_json.error());
  auto status = InstanceStatusFromJson(*status_json);
  if (!status) return fail(status.error());
  inst.config = std::move(*config);
  inst.status = std::move(*status);
  if (inst.config.name != name) {
    return Err(ErrorCode::kInternal, "stored instance '" + name +
                                         "' has config name '" +
                                         inst.config.name + "'");
  }
  return inst;
}

ApiToken TokenFromRow(const Statement& stmt) {
  ApiToken t;
  t.id = stmt.ColumnText(0);
  t.name = stmt.ColumnText(1);
  t.secret_hash = stmt.ColumnText(2);
  t.created_at = stmt.ColumnInt(3);
  return t;
}

// Unique-constraint errors from SQLite name columns, not values; rewrite
// them so the user learns which name is taken.
Error Conflict(Error e, const std::string& what) {
  if (e.code() != ErrorCode::kAlreadyExists) return e;
  return Error(ErrorCode::kAlreadyExists,
               what + " already exists (" + e.message() + ")");
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(
    const std::string& path) {
  auto opened = [&]() -> Result<sqlite::Database> {
    ASSIGN_OR_RETURN(auto db, sqlite::Database::Open(path));
    sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
    // journal_mode returns the mode actually set; anything but wal means the
    // file system refused it (e.g. no shared memory), which we want to know.
    {
      ASSIGN_OR_RETURN(auto mode_stmt,
                       Statement::Prepare(db, "PRAGMA journal_mode=WAL"));
      ASSIGN_OR_RETURN(bool has_row, mode_stmt.Step());
      if (!has_row || mode_stmt.ColumnText(0) != "wal") {
        return Err(ErrorCode::kIo, "cannot enable WAL journal");
      }
    }
    TRY(db.Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
    TRY(sqlite::Migrate(db));
    return db;
  }();
  if (!opened) {
    Error e = std::move(opened).error();
    e.WithContext("open database " + path);
    return tl::unexpected<Error>(std::move(e));
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(*opened)));
}

Status SqliteStore::CreateInstance(const Instance& instance) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(db_,
                         "INSERT INTO instances (name, id, created_at, "
                         "config, status) VALUES (?, ?, ?, ?, ?)"));
  TRY(stmt.Bind(1, instance.name()));
  TRY(stmt.Bind(2, instance.id));
  TRY(stmt.Bind(3, instance.created_at));
  TRY(stmt.Bind(4, ToJson(instance.config).dump()));
  TRY(stmt.Bind(5, ToJson(instance.status).dump()));
  auto run = stmt.Run();
  if (!run) {
    return tl::unexpected<Error>(Conflict(
        std::move(run).error(),
        "instance '" + instance.name() + "' or id '" + instance.id + "'"));
  }
  TRY(tx.Commit());
  ApplyToCacheLocked([&](Snapshot& c) { c[instance.name()] = instance; });
  return Ok();
}

Status SqliteStore::RefreshCacheLocked() {
  if (!version_stmt_) {
    ASSIGN_OR_RETURN(auto stmt, Statement::Prepare(db_, "PRAGMA data_version"));
    version_stmt_.emplace(std::move(stmt));
  }
  ASSIGN_OR_RETURN(bool has_version, version_stmt_->Step());
  if (!has_version)
    return Err(ErrorCode::kInternal, "PRAGMA data_version returned nothing");
  int64_t version = version_stmt_->ColumnInt(0);
  version_stmt_->Reset();
  if (version == cache_version_) return Ok();
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(auto stmt, Statement::Prepare(
                                  db_,
                                  "SELECT name, id, created_at, config, status "
                                  "FROM instances ORDER BY name"));
  auto fresh = std::make_shared<Snapshot>();
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(auto inst, InstanceFromRow(stmt));
    std::string name = inst.name();
    fresh->emplace(std::move(name), std::move(inst));
  }
  stmt.Reset();
  TRY(tx.Commit());
  cache_ = std::move(fresh);
  cache_version_ = version;
  return Ok();
}

Result<std::shared_ptr<const SqliteStore::Snapshot>>
SqliteStore::CurrentSnapshot() {
  std::lock_guard lock(mu_);
  TRY(RefreshCacheLocked());
  return cache_;
}

void SqliteStore::ApplyToCacheLocked(
    const std::function<void(Snapshot&)>& change) {
  if (cache_version_ < 0) return;  // not loaded yet; the first read loads it
  auto next = std::make_shared<Snapshot>(*cache_);
  change(*next);
  cache_ = std::move(next);
}

Result<Instance> SqliteStore::GetInstance(std::string_view name) {
  ASSIGN_OR_RETURN(auto snapshot, CurrentSnapshot());
  auto it = snapshot->find(name);
  if (it == snapshot->end()) return InstanceNotFound(name);
  return it->second;
}

Result<std::vector<Instance>> SqliteStore::ListInstances() {
  ASSIGN_OR_RETURN(auto snapshot, CurrentSnapshot());
  std::vector<Instance> out;
  out.reserve(snapshot->size());
  for (const auto& [name, inst] : *snapshot) out.push_back(inst);
  return out;
}

Result<std::vector<std::string>> SqliteStore::ListInstanceNames() {
  ASSIGN_OR_RETURN(auto snapshot, CurrentSnapshot());
  std::vector<std::string> out;
  out.reserve(snapshot->size());
  for (const auto& [name, inst] : *snapshot) out.push_back(name);
  return out;
}

Status SqliteStore::UpdateInstance(const Instance& instance) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  // The id and creation time are fixed at creation; only what changes is
  // written.
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(
          db_, "UPDATE instances SET config = ?, status = ? WHERE name = ?"));
  TRY(stmt.Bind(1, ToJson(instance.config).dump()));
  TRY(stmt.Bind(2, ToJson(instance.status).dump()));
  TRY(stmt.Bind(3, instance.name()));
  TRY(stmt.Run());
  if (db_.Changes() == 0) return InstanceNotFound(instance.name());
  TRY(tx.Commit());
  ApplyToCacheLocked([&](Snapshot& c) {
    // id and created_at never change; keep the stored ones.
    if (auto it = c.find(instance.name()); it != c.end()) {
      it->second.config = instance.config;
      it->second.status = instance.status;
    }
  });
  return Ok();
}

Status SqliteStore::DeleteInstance(std::string_view name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(auto stmt, Statement::Prepare(
                                  db_, "DELETE FROM instances WHERE name = ?"));
  TRY(stmt.Bind(1, name));
  TRY(stmt.Run());
  if (db_.Changes() == 0) return InstanceNotFound(name);
  TRY(tx.Commit());
  ApplyToCacheLocked([&](Snapshot& c) {
    if (auto it = c.find(name); it != c.end()) c.erase(it);
  });
  return Ok();
}

Status SqliteStore::CreateToken(const ApiToken& token) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(auto stmt, Statement::Prepare(
                                  db_,
                                  "INSERT INTO tokens (id, name, secret_hash, "
                                  "created_at) VALUES (?, ?, ?, ?)"));
  TRY(stmt.Bind(1, token.id));
  TRY(stmt.Bind(2, token.name));
  TRY(stmt.Bind(3, token.secret_hash));
  TRY(stmt.Bind(4, token.created_at));
  auto run = stmt.Run();
  if (!run) {
    return tl::unexpected<Error>(
        Conflict(std::move(run).error(),
                 "token '" + token.name + "' (id '" + token.id + "')"));
  }
  return tx.Commit();
}

Result<ApiToken> SqliteStore::FindTokenByHash(std::string_view secret_hash) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(db_,
                         "SELECT id, name, secret_hash, created_at FROM "
                         "tokens WHERE secret_hash = ?"));
  TRY(stmt.Bind(1, secret_hash));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  // The hash is a credential: never echo it in the error.
  if (!row) return Err(ErrorCode::kNotFound, "token not found");
  ApiToken token = TokenFromRow(stmt);
  stmt.Reset();
  TRY(tx.Commit());
  return token;
}

Result<std::vector<ApiToken>> SqliteStore::ListTokens() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(db_,
                         "SELECT id, name, secret_hash, created_at FROM "
                         "tokens ORDER BY created_at, name"));
  std::vector<ApiToken> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(TokenFromRow(stmt));
  }
  TRY(tx.Commit());
  return out;
}

Status SqliteStore::DeleteToken(std::string_view id_or_name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(db_, "DELETE FROM tokens WHERE id = ?1 OR name = ?1"));
  TRY(stmt.Bind(1, id_or_name));
  TRY(stmt.Run());
  if (db_.Changes() == 0) {
    return Err(ErrorCode::kNotFound,
               "token '" + std::string(id_or_name) + "' not found");
  }
  return tx.Commit();
}

Result<int64_t> SqliteStore::SchemaVersion() {
  std::lock_guard lock(mu_);
  return db_.QueryInt("PRAGMA user_version");
}

Status SqliteStore::CheckIntegrity() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto stmt,
                   Statement::Prepare(db_, "PRAGMA integrity_check"));
  std::string report;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if (!report.empty()) report += "; ";
    report += stmt.ColumnText(0);
  }
  if (report != "ok")
    return Err(ErrorCode::kInternal, "database integrity check: " + report);
  return Ok();
}

}  // namespace vireo
