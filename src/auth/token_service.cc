#include "auth/token_service.h"

#include <openssl/evp.h>

#include <cctype>
#include <chrono>

namespace vireo {

namespace {

constexpr size_t kSecretBytes = 32;
constexpr size_t kIdBytes = 8;

std::string ToHex(const unsigned char* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f'))
      return false;
  }
  return true;
}

Status ValidateTokenName(const std::string& name) {
  if (name.empty() || name.size() > 63) {
    return Err(ErrorCode::kInvalidArgument,
               "token name must be 1-63 characters");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.') {
      return Err(ErrorCode::kInvalidArgument,
                 "invalid token name '" + name +
                     "': allowed characters are [A-Za-z0-9-_.]");
    }
  }
  // Names appear in URL paths (DELETE /1.0/tokens/{name}).
  if (name == "." || name == "..") {
    return Err(ErrorCode::kInvalidArgument,
               "invalid token name '" + name + "'");
  }
  return Ok();
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) !=
      1) {
    return {};  // only on OpenSSL misconfiguration; matches no stored hash
  }
  return ToHex(md, len);
}

Result<NewToken> TokenService::Create(const std::string& name) {
  TRY(ValidateTokenName(name));
  ASSIGN_OR_RETURN(auto existing, store_->ListTokens());
  for (const auto& t : existing) {
    if (t.name == name)
      return Err(ErrorCode::kAlreadyExists,
                 "token '" + name + "' already exists");
  }
  NewToken result;
  result.secret = RandomHex(kSecretBytes);
  result.token.id = RandomHex(kIdBytes);
  result.token.name = name;
  result.token.secret_hash = Sha256Hex(result.secret);
  result.token.created_at =
      std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count();
  TRY_CTX(store_->CreateToken(result.token), "create token '" + name + "'");
  return result;
}

Result<ApiToken> TokenService::Authenticate(std::string_view secret) {
  if (secret.size() != kSecretBytes * 2 || !IsLowerHex(secret)) {
    return Err(ErrorCode::kUnauthenticated, "malformed token");
  }
  auto token = store_->FindTokenByHash(Sha256Hex(secret));
  if (!token) {
    if (token.error().code() == ErrorCode::kNotFound) {
      return Err(ErrorCode::kUnauthenticated, "invalid or revoked token");
    }
    return tl::unexpected<Error>(std::move(token).error());
  }
  return token;
}

Result<std::vector<ApiToken>> TokenService::List() {
  return store_->ListTokens();
}

Status TokenService::Revoke(const std::string& id_or_name) {
  if (id_or_name.empty())
    return Err(ErrorCode::kInvalidArgument, "empty token id or name");
  auto status = store_->DeleteToken(id_or_name);
  if (!status && status.error().code() == ErrorCode::kNotFound) {
    return Err(ErrorCode::kNotFound, "token '" + id_or_name + "' not found");
  }
  return status;
}

}  // namespace vireo
