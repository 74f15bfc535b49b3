// SqliteStore: the generic (kind, name) -> JSON document table.
#include <utility>

#include "store/sqlite/sqlite_store.h"

namespace vireo {

using sqlite::Statement;
using sqlite::Transaction;

namespace {

std::string What(std::string_view kind, std::string_view name) {
  return std::string(kind) + " '" + std::string(name) + "'";
}

Result<Json> ParseStored(std::string_view kind, std::string_view name,
                         const std::string& text) {
  auto parsed = ParseJson(text);
  if (!parsed) {
    return Err(ErrorCode::kInternal,
               "stored " + What(kind, name) +
                   " is damaged: " + parsed.error().message());
  }
  return std::move(*parsed);
}

}  // namespace

Status SqliteStore::CreateObject(std::string_view kind, std::string_view name,
                                 const Json& value) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(
          db_, "INSERT INTO objects (kind, name, data) VALUES (?, ?, ?)"));
  TRY(stmt.Bind(1, kind));
  TRY(stmt.Bind(2, name));
  TRY(stmt.Bind(3, value.dump()));
  if (auto run = stmt.Run(); !run) {
    if (run.error().code() == ErrorCode::kAlreadyExists)
      return Err(ErrorCode::kAlreadyExists,
                 What(kind, name) + " already exists");
    return run;
  }
  return tx.Commit();
}

Status SqliteStore::UpdateObject(std::string_view kind, std::string_view name,
                                 const Json& value) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(
          db_, "UPDATE objects SET data = ?3 WHERE kind = ?1 AND name = ?2"));
  TRY(stmt.Bind(1, kind));
  TRY(stmt.Bind(2, name));
  TRY(stmt.Bind(3, value.dump()));
  TRY(stmt.Run());
  if (db_.Changes() == 0)
    return Err(ErrorCode::kNotFound, What(kind, name) + " not found");
  return tx.Commit();
}

Result<Json> SqliteStore::GetObject(std::string_view kind,
                                    std::string_view name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(
          db_, "SELECT data FROM objects WHERE kind = ? AND name = ?"));
  TRY(stmt.Bind(1, kind));
  TRY(stmt.Bind(2, name));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Err(ErrorCode::kNotFound, What(kind, name) + " not found");
  return ParseStored(kind, name, stmt.ColumnText(0));
}

Result<std::vector<Json>> SqliteStore::ListObjects(std::string_view kind) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      auto stmt,
      Statement::Prepare(
          db_, "SELECT name, data FROM objects WHERE kind = ? ORDER BY name"));
  TRY(stmt.Bind(1, kind));
  std::vector<Json> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ASSIGN_OR_RETURN(Json j,
                     ParseStored(kind, stmt.ColumnText(0), stmt.ColumnText(1)));
    out.push_back(std::move(j));
  }
  return out;
}

Status SqliteStore::DeleteObject(std::string_view kind, std::string_view name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_));
  ASSIGN_OR_RETURN(auto stmt,
                   Statement::Prepare(
                       db_, "DELETE FROM objects WHERE kind = ? AND name = ?"));
  TRY(stmt.Bind(1, kind));
  TRY(stmt.Bind(2, name));
  TRY(stmt.Run());
  if (db_.Changes() == 0)
    return Err(ErrorCode::kNotFound, What(kind, name) + " not found");
  return tx.Commit();
}

}  // namespace vireo
