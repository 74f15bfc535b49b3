#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/instance.h"

namespace vireo {

struct ApiToken {
  std::string id;    // public identifier, shown in lists
  std::string name;  // what the admin called it
  std::string
      secret_hash;  // hex SHA-256 of the secret; the secret is never stored
  int64_t created_at = 0;
};

// Persistent state. Each call is one transaction: it either happens whole or
// not at all. Implementations: sqlite (single node), etcd (cluster, later).
// Thread-safe.
class Store {
 public:
  virtual ~Store() = default;

  // kAlreadyExists if the name is taken.
  [[nodiscard]] virtual Status CreateInstance(const Instance& instance) = 0;
  // kNotFound if absent.
  [[nodiscard]] virtual Result<Instance> GetInstance(std::string_view name) = 0;
  [[nodiscard]] virtual Result<std::vector<Instance>> ListInstances() = 0;
  // Names only, sorted: the hot path of GET /1.0/instances.
  [[nodiscard]] virtual Result<std::vector<std::string>>
  ListInstanceNames() = 0;
  // Replaces config and status. kNotFound if absent.
  [[nodiscard]] virtual Status UpdateInstance(const Instance& instance) = 0;
  // kNotFound if absent.
  [[nodiscard]] virtual Status DeleteInstance(std::string_view name) = 0;

  [[nodiscard]] virtual Status CreateToken(const ApiToken& token) = 0;
  [[nodiscard]] virtual Result<ApiToken> FindTokenByHash(
      std::string_view secret_hash) = 0;
  [[nodiscard]] virtual Result<std::vector<ApiToken>> ListTokens() = 0;
  // Deletes by id or name. kNotFound if neither matches.
  [[nodiscard]] virtual Status DeleteToken(std::string_view id_or_name) = 0;

  // Small records of the other resource kinds (images, storage pools,
  // volumes, networks, ...), kept as JSON documents keyed by (kind, name).
  // Services own their documents' schema; the store only keeps them.
  // kAlreadyExists if (kind, name) is taken.
  [[nodiscard]] virtual Status CreateObject(std::string_view kind,
                                            std::string_view name,
                                            const Json& value) = 0;
  // kNotFound if absent.
  [[nodiscard]] virtual Status UpdateObject(std::string_view kind,
                                            std::string_view name,
                                            const Json& value) = 0;
  // kNotFound if absent.
  [[nodiscard]] virtual Result<Json> GetObject(std::string_view kind,
                                               std::string_view name) = 0;
  // Sorted by name.
  [[nodiscard]] virtual Result<std::vector<Json>> ListObjects(
      std::string_view kind) = 0;
  // kNotFound if absent.
  [[nodiscard]] virtual Status DeleteObject(std::string_view kind,
                                            std::string_view name) = 0;
};

}  // namespace vireo
