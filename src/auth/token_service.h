#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "common/random.h"
#include "store/store.h"

namespace vireo {

struct NewToken {
  ApiToken token;
  std::string secret;  // shown to the user once, never stored
};

// Bearer API tokens for the HTTPS listener. Secrets are 32 random bytes,
// hex-encoded; only their SHA-256 is stored.
class TokenService {
 public:
  explicit TokenService(Store* store) : store_(store) {}
  [[nodiscard]] Result<NewToken> Create(const std::string& name);
  // kUnauthenticated for an unknown or malformed secret.
  [[nodiscard]] Result<ApiToken> Authenticate(std::string_view secret);
  [[nodiscard]] Result<std::vector<ApiToken>> List();
  [[nodiscard]] Status Revoke(const std::string& id_or_name);

 private:
  Store* store_;
};

std::string Sha256Hex(std::string_view data);

}  // namespace vireo
