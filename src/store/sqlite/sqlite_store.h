#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
  [[nodiscard]] Result<std::vector<std::string>> ListInstanceNames() override;
  [[nodiscard]] Status UpdateInstance(const Instance& instance) override;
  [[nodiscard]] Status DeleteInstance(std::string_view name) override;

  [[nodiscard]] Status CreateToken(const ApiToken& token) override;
  [[nodiscard]] Result<ApiToken> FindTokenByHash(
      std::string_view secret_hash) override;
  [[nodiscard]] Result<std::vector<ApiToken>> ListTokens() override;
  [[nodiscard]] Status DeleteToken(std::string_view id_or_name) override;

  [[nodiscard]] Status CreateObject(std::string_view kind,
                                    std::string_view name,
                                    const Json& value) override;
  [[nodiscard]] Status UpdateObject(std::string_view kind,
                                    std::string_view name,
                                    const Json& value) override;
  [[nodiscard]] Result<Json> GetObject(std::string_view kind,
                                       std::string_view name) override;
  [[nodiscard]] Result<std::vector<Json>> ListObjects(
      std::string_view kind) override;
  [[nodiscard]] Status DeleteObject(std::string_view kind,
                                    std::string_view name) override;

  // For diagnostics and tests: the schema version recorded in the file.
  [[nodiscard]] Result<int64_t> SchemaVersion();
  // Runs PRAGMA integrity_check; kInternal with SQLite's report if damaged.
  [[nodiscard]] Status CheckIntegrity();

 private:
  explicit SqliteStore(sqlite::Database db) : db_(std::move(db)) {}
  // Makes cache_ current: reloads it when another connection has committed
  // since the last load (PRAGMA data_version), otherwise does nothing.
  Status RefreshCacheLocked();

  std::mutex mu_;
  sqlite::Database db_;
  // Parsed instances by name. Reads are served from here so listing does not
  // parse every row's JSON on every API call; our own writes update it after
  // they commit.
  // Readers take the current snapshot under the lock and copy from it after
  // releasing it; writers replace the snapshot (copy-on-write), which is rare.
  using Snapshot = std::map<std::string, Instance, std::less<>>;
  std::shared_ptr<const Snapshot> cache_ = std::make_shared<Snapshot>();
  int64_t cache_version_ = -1;
  std::optional<sqlite::Statement> version_stmt_;
  // Returns the current snapshot, refreshed if another connection wrote.
  Result<std::shared_ptr<const Snapshot>> CurrentSnapshot();
  void ApplyToCacheLocked(const std::function<void(Snapshot&)>& change);
};

}  // namespace vireo
