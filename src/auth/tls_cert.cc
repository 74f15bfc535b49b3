#include "auth/tls_cert.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <memory>

#include "common/fd.h"

namespace vireo {

namespace {

constexpr long kValiditySeconds = 10L * 365 * 24 * 3600;

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION,
                               Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

// The OpenSSL error queue as text, for error messages.
std::string SslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

tl::unexpected<Error> SslErr(const std::string& what) {
  return Err(ErrorCode::kInternal, what + ": " + SslErrors());
}

bool LooksLikeHostName(const std::string& s) {
  if (s.empty() || s.size() > 253 || s == "localhost") return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.')
      return false;
  }
  return true;
}

Status AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) return SslErr("certificate extension " + value);
  if (X509_add_ext(cert, ext.get(), -1) != 1)
    return SslErr("add extension " + value);
  return Ok();
}

Result<X509Ptr> MakeCertificate(EVP_PKEY* key, const std::string& common_name) {
  X509Ptr cert(X509_new());
  if (!cert) return SslErr("X509_new");
  if (X509_set_version(cert.get(), 2) != 1) return SslErr("set version");

  BnPtr serial(BN_new());
  if (!serial ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return SslErr("serial number");
  }
  // Back-date a little so clients with a slightly slow clock accept it.
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValiditySeconds)) {
    return SslErr("validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn =
      common_name.empty() ? "vireo" : common_name.substr(0, 64);
  if (X509_NAME_add_entry_by_txt(
          name, "O", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>("Vireo"), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(
          name, "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    return SslErr("subject name");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return SslErr("set public key");

  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  if (LooksLikeHostName(common_name)) san += ",DNS:" + common_name;
  // CA:TRUE and keyCertSign let clients pin this certificate as their own
  // trust anchor (as with `openssl req -x509`).
  TRY(AddExtension(cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  TRY(AddExtension(cert.get(), NID_key_usage,
                   "critical,digitalSignature,keyCertSign"));
  TRY(AddExtension(cert.get(), NID_ext_key_usage, "serverAuth"));
  TRY(AddExtension(cert.get(), NID_subject_key_identifier, "hash"));
  TRY(AddExtension(cert.get(), NID_subject_alt_name, san));

  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0)
    return SslErr("sign certificate");
  return cert;
}

Result<std::string> BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return SslErr("PEM encoding");
  return std::string(data, static_cast<size_t>(len));
}

// Writes via a temporary file in the same directory and rename(), so a crash
// never leaves a half-written key or certificate behind.
Status WriteFileAtomic(const std::string& path, const std::string& content,
                       mode_t mode) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec)
      return Err(ErrorCode::kIo,
                 "create directory " + parent.string() + ": " + ec.message());
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  UniqueFd fd(
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) return ErrnoErr("create " + tmp);
  // The umask must not widen or narrow what we asked for.
  if (::fchmod(fd.get(), mode) != 0) return ErrnoErr("chmod " + tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::unlink(tmp.c_str());
      return ErrnoErr("write " + tmp, saved);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    return ErrnoErr("fsync " + tmp, saved);
  }
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    return ErrnoErr("rename " + tmp + " to " + path, saved);
  }
  return Ok();
}

}  // namespace

Status EnsureSelfSignedCertificate(const std::string& cert_path,
                                   const std::string& key_path,
                                   const std::string& common_name) {
  if (cert_path.empty() || key_path.empty()) {
    return Err(ErrorCode::kInvalidArgument,
               "TLS certificate and key paths must be set");
  }
  std::error_code ec;
  if (std::filesystem::exists(cert_path, ec) &&
      std::filesystem::exists(key_path, ec)) {
    return Ok();
  }
  ERR_clear_error();
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return SslErr("generate EC P-256 key");
  ASSIGN_OR_RETURN(X509Ptr cert, MakeCertificate(key.get(), common_name));

  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (!key_bio || PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr,
                                           nullptr, 0, nullptr, nullptr) != 1) {
    return SslErr("encode private key");
  }
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1) {
    return SslErr("encode certificate");
  }
  ASSIGN_OR_RETURN(std::string key_pem, BioContents(key_bio.get()));
  ASSIGN_OR_RETURN(std::string cert_pem, BioContents(cert_bio.get()));
  // Key first: after a crash in between, the missing certificate makes the
  // next start regenerate both.
  TRY_CTX(WriteFileAtomic(key_path, key_pem, 0600), "write TLS key");
  TRY_CTX(WriteFileAtomic(cert_path, cert_pem, 0644), "write TLS certificate");
  return Ok();
}

}  // namespace vireo
