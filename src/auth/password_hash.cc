#include "auth/password_hash.h"

#include <argon2.h>

#include <array>
#include <string>

#include "common/random.h"

namespace vireo {

namespace {

// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): about 30-60 ms on
// a server core, which keeps a login cheap and a guess expensive.
constexpr uint32_t kTimeCost = 2;
constexpr uint32_t kMemoryKiB = 19 * 1024;
constexpr uint32_t kLanes = 1;
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

}  // namespace

Result<std::string> HashPassword(std::string_view password) {
  std::array<unsigned char, kSaltBytes> salt;
  RandomBytes(salt.data(), salt.size());
  const size_t len = argon2_encodedlen(kTimeCost, kMemoryKiB, kLanes,
                                       kSaltBytes, kHashBytes, Argon2_id);
  std::string encoded(len, '\0');
  int rc = argon2id_hash_encoded(kTimeCost, kMemoryKiB, kLanes, password.data(),
                                 password.size(), salt.data(), salt.size(),
                                 kHashBytes, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    return Err(ErrorCode::kInternal,
               std::string("argon2id: ") + argon2_error_message(rc));
  }
  encoded.resize(encoded.find('\0') == std::string::npos ? encoded.size()
                                                         : encoded.find('\0'));
  return encoded;
}

bool VerifyPassword(std::string_view encoded, std::string_view password) {
  if (encoded.rfind("$argon2id$", 0) != 0) return false;
  const std::string copy(encoded);  // argon2 wants a NUL-terminated string
  return argon2id_verify(copy.c_str(), password.data(), password.size()) ==
         ARGON2_OK;
}

}  // namespace vireo
