#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "store/sqlite/sqlite_db.h"
#include "store/store.h"

namespace vireo {

// Single-node Store on one SQLite file: WAL journal, synchronous=FULL so a
// committed call survives power loss. One connection serialized by a mutex;
// the store is small and every call is short.
class SqliteStore : public Store {
 public:
  // Creates the file if needed and applies pending schema migrations.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path);

  [[nodiscard]] Status CreateInstance(const Instance& instance) override;
  [[nodiscard]] Result<Instance> GetInstance(std::string_view name) override;
  [[nodiscard]] Result<std::vector<Instance>> ListInstances() override;
  [[nodiscard]] Status UpdateInstance(const Instance& instance) override;
  [[nodiscard]] Status DeleteInstance(std::string_view name) override;

  [[nodiscard]] Status CreateToken(const ApiToken& token) override;
  [[nodiscard]] Result<ApiToken> FindTokenByHash(
      std::string_view secret_hash) override;
  [[nodiscard]] Result<std::vector<ApiToken>> ListTokens() override;
  [[nodiscard]] Status DeleteToken(std::string_view id_or_name) override;

  // For diagnostics and tests: the schema version recorded in the file.
  [[nodiscard]] Result<int64_t> SchemaVersion();
  // Runs PRAGMA integrity_check; kInternal with SQLite's report if damaged.
  [[nodiscard]] Status CheckIntegrity();

 private:
  explicit SqliteStore(sqlite::Database db) : db_(std::move(db)) {}

  std::mutex mu_;
  sqlite::Database db_;
};

}  // namespace vireo
