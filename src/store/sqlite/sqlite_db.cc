#include "store/sqlite/sqlite_db.h"

#include <utility>

namespace vireo::sqlite {

Error ToError(sqlite3* db, int rc, std::string_view what) {
  std::string msg =
      std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return Error(ErrorCode::kAlreadyExists, std::move(msg));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(ErrorCode::kUnavailable, std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error(ErrorCode::kInternal, std::move(msg));
    default:
      return Error(ErrorCode::kIo, std::move(msg));
  }
}

Result<Database> Database::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  Database db(
      raw);  // owns raw even on failure: sqlite3_open_v2 allocates it anyway
  if (rc != SQLITE_OK) {
    return tl::unexpected<Error>(ToError(raw, rc, "open database " + path));
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

Status Database::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Error e = ToError(nullptr, rc, "exec");
    return Err(e.code(), "sqlite exec: " + msg);
  }
  return Ok();
}

Result<int64_t> Database::QueryInt(const std::string& sql) {
  ASSIGN_OR_RETURN(auto stmt, Statement::Prepare(*this, sql));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Err(ErrorCode::kInternal, "no result from: " + sql);
  return stmt.ColumnInt(0);
}

Result<Statement> Statement::Prepare(const Database& db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db.get(), sql.data(),
                              static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return tl::unexpected<Error>(ToError(db.get(), rc, "prepare"));
  }
  return Statement(db.get(), stmt);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Status Statement::Bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text(stmt_, index, text.data(),
                             static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return tl::unexpected<Error>(ToError(db_, rc, "bind"));
  return Ok();
}

Status Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) return tl::unexpected<Error>(ToError(db_, rc, "bind"));
  return Ok();
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return tl::unexpected<Error>(ToError(db_, rc, "step"));
}

Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Ok();
  }
}

std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (!text) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

int64_t Statement::ColumnInt(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

Result<Transaction> Transaction::Begin(Database& db) {
  TRY_CTX(db.Exec("BEGIN IMMEDIATE"), "begin transaction");
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(other.db_), done_(std::exchange(other.done_, true)) {}

Transaction::~Transaction() {
  // A failed rollback leaves nothing better to do: SQLite rolls the journal
  // back itself on the next open.
  if (!done_) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  TRY_CTX(db_->Exec("COMMIT"), "commit");
  done_ = true;
  return Ok();
}

}  // namespace vireo::sqlite
