#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo::sqlite {

// Maps an SQLite result code to a project error: constraint violations are
// kAlreadyExists (the only constraints are unique names/ids), a locked
// database is kUnavailable, everything else is kIo.
Error ToError(sqlite3* db, int rc, std::string_view what);

// Owns one connection. Not thread-safe by itself; SqliteStore serializes.
class Database {
 public:
  static Result<Database> Open(const std::string& path);
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  sqlite3* get() const { return db_; }
  // Runs one or more statements that return no rows we care about.
  [[nodiscard]] Status Exec(const std::string& sql);
  // Runs a statement returning a single integer (e.g. a PRAGMA).
  [[nodiscard]] Result<int64_t> QueryInt(const std::string& sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int Changes() const { return sqlite3_changes(db_); }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// A prepared statement, finalized on destruction.
class Statement {
 public:
  static Result<Statement> Prepare(const Database& db, std::string_view sql);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  [[nodiscard]] Status Bind(int index, std::string_view text);
  [[nodiscard]] Status Bind(int index, int64_t value);
  // true: a row is ready to read; false: done.
  [[nodiscard]] Result<bool> Step();
  // Steps to completion, for statements that return no rows.
  [[nodiscard]] Status Run();

  // Ends a read early; COMMIT refuses while a statement is mid-result.
  void Reset() { sqlite3_reset(stmt_); }

  std::string ColumnText(int column) const;
  int64_t ColumnInt(int column) const;

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front so a
// transaction never fails half-way on lock upgrade); rolls back on
// destruction unless Commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> Begin(Database& db);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  [[nodiscard]] Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
  bool done_ = false;
};

}  // namespace vireo::sqlite
