#include "backup/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <memory>

#include "common/random.h"

namespace vireo::backup {

Digest Sha256(std::span<const uint8_t> data) {
  Digest out;
  SHA256(data.data(), data.size(), out.data());
  return out;
}

Digest HmacSha256(const Key& key, std::span<const uint8_t> data) {
  Digest out;
  unsigned int len = out.size();
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(),
       data.size(), out.data(), &len);
  return out;
}

Key DeriveKey(const Key& key, std::string_view purpose) {
  std::string info = "vireo-backup/" + std::string(purpose);
  return HmacSha256(key, AsBytes(info));
}

std::string ToHex(std::span<const uint8_t> data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t c : data) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

static int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool FromHex(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string Base64Encode(std::span<const uint8_t> data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          data.data(), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::vector<uint8_t>> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Err(ErrorCode::kDataLoss, "bad base64");
  std::vector<uint8_t> out(text.size() / 4 * 3 + 1);
  int n = EVP_DecodeBlock(out.data(),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return Err(ErrorCode::kDataLoss, "bad base64");
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

namespace {
struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;
}  // namespace

Result<std::vector<uint8_t>> Seal(const Key& key, std::span<const uint8_t> aad,
                                  std::span<const uint8_t> plain) {
  std::vector<uint8_t> out(kNonceSize + plain.size() + kTagSize);
  RandomBytes(out.data(), kNonceSize);
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      ctx &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                         out.data()) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), out.data() + kNonceSize, &len, plain.data(),
                        static_cast<int>(plain.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonceSize + len, &len) ==
          1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize,
                          out.data() + kNonceSize + plain.size()) == 1;
  if (!ok) return Err(ErrorCode::kInternal, "AES-GCM encryption failed");
  return out;
}

Result<std::vector<uint8_t>> Open(const Key& key, std::span<const uint8_t> aad,
                                  std::span<const uint8_t> sealed) {
  if (sealed.size() < kNonceSize + kTagSize)
    return Err(ErrorCode::kDataLoss, "sealed data truncated");
  size_t n = sealed.size() - kNonceSize - kTagSize;
  std::vector<uint8_t> out(n);
  std::array<uint8_t, kTagSize> tag;
  std::copy_n(sealed.data() + kNonceSize + n, kTagSize, tag.data());
  CtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                         sealed.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data() + kNonceSize,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                          tag.data()) != 1)
    return Err(ErrorCode::kInternal, "AES-GCM decryption setup failed");
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1)
    return Err(ErrorCode::kDataLoss, "authentication tag mismatch");
  return out;
}

}  // namespace vireo::backup
