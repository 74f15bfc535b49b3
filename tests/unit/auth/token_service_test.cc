#include "auth/token_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <set>

#include "store/sqlite/sqlite_store.h"

namespace vireo {
namespace {

class TokenServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-auth-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = SqliteStore::Open(dir_ + "/vireo.db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    tokens_ = std::make_unique<TokenService>(store_.get());
  }
  void TearDown() override {
    tokens_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<TokenService> tokens_;
};

TEST(TokenHelpers, Sha256HexMatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TokenHelpers, RandomHexHasRightLengthAndVaries) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    std::string s = RandomHex(32);
    ASSERT_EQ(s.size(), 64u);
    EXPECT_EQ(s.find_first_not_of("0123456789abcdef"), std::string::npos) << s;
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 50u);
}

TEST_F(TokenServiceTest, CreateThenAuthenticate) {
  auto created = tokens_->Create("ci");
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(created->secret.size(), 64u);
  EXPECT_EQ(created->token.name, "ci");
  EXPECT_FALSE(created->token.id.empty());
  EXPECT_GT(created->token.created_at, 0);
  // Only the hash is kept.
  EXPECT_EQ(created->token.secret_hash, Sha256Hex(created->secret));
  auto listed = tokens_->List();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_NE((*listed)[0].secret_hash, created->secret);

  auto who = tokens_->Authenticate(created->secret);
  ASSERT_TRUE(who) << who.error().ToString();
  EXPECT_EQ(who->name, "ci");
  EXPECT_EQ(who->id, created->token.id);
}

TEST_F(TokenServiceTest, WrongOrMalformedSecretIsUnauthenticated) {
  auto created = tokens_->Create("ci");
  ASSERT_TRUE(created);
  std::string wrong = created->secret;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  for (const std::string& bad :
       {wrong, std::string(), std::string("short"), std::string(64, 'Z'),
        created->secret + "00"}) {
    auto who = tokens_->Authenticate(bad);
    ASSERT_FALSE(who) << bad;
    EXPECT_EQ(who.error().code(), ErrorCode::kUnauthenticated) << bad;
  }
}

TEST_F(TokenServiceTest, RevokeByNameAndById) {
  auto a = tokens_->Create("a");
  auto b = tokens_->Create("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(tokens_->Revoke("a"));
  EXPECT_FALSE(tokens_->Authenticate(a->secret));
  EXPECT_TRUE(tokens_->Authenticate(b->secret));
  ASSERT_TRUE(tokens_->Revoke(b->token.id));
  auto who = tokens_->Authenticate(b->secret);
  ASSERT_FALSE(who);
  EXPECT_EQ(who.error().code(), ErrorCode::kUnauthenticated);
  auto again = tokens_->Revoke("a");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(tokens_->List()->empty());
}

TEST_F(TokenServiceTest, RejectsBadAndDuplicateNames) {
  for (const std::string& bad :
       {std::string(), std::string(64, 'a'), std::string("has space"),
        std::string("a/b"), std::string(".."), std::string("ünï")}) {
    auto created = tokens_->Create(bad);
    ASSERT_FALSE(created) << bad;
    EXPECT_EQ(created.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(tokens_->Create(std::string(63, 'a')));
  EXPECT_TRUE(tokens_->Create("ok-name_1.2"));
  auto dup = tokens_->Create("ok-name_1.2");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
}

}  // namespace
}  // namespace vireo
