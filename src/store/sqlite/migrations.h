#pragma once

#include "common/error.h"
#include "store/sqlite/sqlite_db.h"

namespace vireo::sqlite {

// The schema version this build writes. The database records its version in
// PRAGMA user_version; 0 means empty.
int LatestSchemaVersion();

// Brings the database to LatestSchemaVersion(), one transaction per step so
// a crash leaves it at a consistent earlier version. Refuses a database
// written by a newer vireo: downgrading silently would lose data.
[[nodiscard]] Status Migrate(Database& db);

}  // namespace vireo::sqlite
