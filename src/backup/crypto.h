#pragma once

// Hashing, key derivation and authenticated encryption for the backup
// repository, on OpenSSL's EVP API. Keys derived here never leave memory.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backup/repository.h"
#include "common/error.h"

namespace vireo::backup {

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::span<const uint8_t> data);
Digest HmacSha256(const Key& key, std::span<const uint8_t> data);
// Derives an independent sub-key for one purpose ("chunk-id", ...):
// HMAC-SHA256(key, "vireo-backup/" + purpose), i.e. a one-block HKDF-Expand.
Key DeriveKey(const Key& key, std::string_view purpose);

std::string ToHex(std::span<const uint8_t> data);
// False on a bad length or a non-hex character.
bool FromHex(std::string_view hex, std::span<uint8_t> out);
std::string Base64Encode(std::span<const uint8_t> data);
[[nodiscard]] Result<std::vector<uint8_t>> Base64Decode(std::string_view text);

inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;

// AES-256-GCM with a random 96-bit nonce; output = nonce || ciphertext || tag.
// `aad` is authenticated but not stored (callers bind names and headers).
[[nodiscard]] Result<std::vector<uint8_t>> Seal(const Key& key,
                                                std::span<const uint8_t> aad,
                                                std::span<const uint8_t> plain);
// Inverse of Seal; kDataLoss when the tag does not match (damage or a
// different key: the caller knows which from the key check value).
[[nodiscard]] Result<std::vector<uint8_t>> Open(
    const Key& key, std::span<const uint8_t> aad,
    std::span<const uint8_t> sealed);

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace vireo::backup
