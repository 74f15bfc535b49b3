#include "auth/tls_cert.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vireo {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

X509* LoadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return nullptr;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return cert;
}

EVP_PKEY* LoadKey(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return nullptr;
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return key;
}

class TlsCertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-cert-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cert_ = dir_ + "/sub/server.crt";
    key_ = dir_ + "/sub/server.key";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_, cert_, key_;
};

TEST_F(TlsCertTest, GeneratesLoadableMatchingSelfSignedPair) {
  auto status = EnsureSelfSignedCertificate(cert_, key_, "vireo-host");
  ASSERT_TRUE(status) << status.error().ToString();

  struct stat st {};
  ASSERT_EQ(::stat(key_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  X509* cert = LoadCert(cert_);
  ASSERT_NE(cert, nullptr);
  EVP_PKEY* key = LoadKey(key_);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert, key), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(key), 256);

  EXPECT_EQ(X509_check_host(cert, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert, "vireo-host", 0, 0, nullptr), 1);
  EXPECT_NE(X509_check_host(cert, "example.com", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "::1", 0), 1);

  // Valid now and for (about) ten years.
  time_t in_nine_years = time(nullptr) + 9L * 365 * 24 * 3600;
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert)), 0);
  EXPECT_GT(X509_cmp_time(X509_get0_notAfter(cert), &in_nine_years), 0);

  // A client that pins the certificate as its trust anchor accepts it.
  X509_STORE* store = X509_STORE_new();
  ASSERT_EQ(X509_STORE_add_cert(store, cert), 1);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  ASSERT_EQ(X509_STORE_CTX_init(ctx, store, cert, nullptr), 1);
  EXPECT_EQ(X509_verify_cert(ctx), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  EVP_PKEY_free(key);
  X509_free(cert);
}

TEST_F(TlsCertTest, LeavesExistingFilesAlone) {
  ASSERT_TRUE(EnsureSelfSignedCertificate(cert_, key_, "localhost"));
  const std::string cert_pem = ReadAll(cert_);
  const std::string key_pem = ReadAll(key_);
  ASSERT_FALSE(cert_pem.empty());
  ASSERT_TRUE(EnsureSelfSignedCertificate(cert_, key_, "localhost"));
  EXPECT_EQ(ReadAll(cert_), cert_pem);
  EXPECT_EQ(ReadAll(key_), key_pem);
}

TEST_F(TlsCertTest, RegeneratesWhenOneFileIsMissing) {
  ASSERT_TRUE(EnsureSelfSignedCertificate(cert_, key_, "localhost"));
  const std::string key_pem = ReadAll(key_);
  std::filesystem::remove(cert_);
  ASSERT_TRUE(EnsureSelfSignedCertificate(cert_, key_, "localhost"));
  EXPECT_NE(ReadAll(key_), key_pem);
  X509* cert = LoadCert(cert_);
  EVP_PKEY* key = LoadKey(key_);
  ASSERT_TRUE(cert && key);
  EXPECT_EQ(X509_check_private_key(cert, key), 1);
  EVP_PKEY_free(key);
  X509_free(cert);
  // No temporary files left behind.
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_ + "/sub")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2);
}

TEST_F(TlsCertTest, EmptyPathsAreRejected) {
  auto status = EnsureSelfSignedCertificate("", key_, "localhost");
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vireo
