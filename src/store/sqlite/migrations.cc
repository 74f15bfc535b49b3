#include "store/sqlite/migrations.h"

#include <array>
#include <string>

namespace vireo::sqlite {

namespace {

// Append only: a released step must never change, since databases in the
// field already ran it.
constexpr std::array<const char*, 2> kMigrations = {
    // 1: instances and API tokens.
    R"sql(
      CREATE TABLE instances (
        name       TEXT PRIMARY KEY NOT NULL,
        id         TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        config     TEXT NOT NULL,
        status     TEXT NOT NULL
      );
      CREATE TABLE tokens (
        id          TEXT PRIMARY KEY NOT NULL,
        name        TEXT NOT NULL UNIQUE,
        secret_hash TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
      );
    )sql",
    // 2: JSON documents of the other resource kinds (images, pools, ...).
    R"sql(
      CREATE TABLE objects (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (kind, name)
      );
    )sql",
};

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(kMigrations.size()); }

Status Migrate(Database& db) {
  ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version"));
  if (version > LatestSchemaVersion()) {
    return Err(ErrorCode::kFailedPrecondition,
               "database schema version " + std::to_string(version) +
                   " is newer than this vireo supports (" +
                   std::to_string(LatestSchemaVersion()) + "); upgrade vireo");
  }
  for (int64_t next = version + 1; next <= LatestSchemaVersion(); ++next) {
    std::string step = "schema migration " + std::to_string(next);
    ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db));
    // Re-read under the write lock: another process may have migrated
    // between our first read and BEGIN IMMEDIATE.
    ASSIGN_OR_RETURN(int64_t current, db.QueryInt("PRAGMA user_version"));
    if (current >= next) continue;
    TRY_CTX(db.Exec(kMigrations[static_cast<size_t>(next - 1)]), step);
    TRY_CTX(db.Exec("PRAGMA user_version = " + std::to_string(next)), step);
    TRY_CTX(tx.Commit(), step);
  }
  return Ok();
}

}  // namespace vireo::sqlite
