#include "auth/user_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "auth/password_hash.h"
#include "store/sqlite/sqlite_store.h"

namespace vireo {
namespace {

class UserServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-users-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto store = SqliteStore::Open(dir_ + "/vireo.db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    users_ = std::make_unique<UserService>(store_.get());
  }
  void TearDown() override {
    users_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<UserService> users_;
};

TEST(PasswordHash, Argon2idWithPerCallSalt) {
  auto a = HashPassword("correct horse");
  auto b = HashPassword("correct horse");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->rfind("$argon2id$", 0), 0u) << *a;
  EXPECT_NE(*a, *b);  // different salts
  EXPECT_TRUE(VerifyPassword(*a, "correct horse"));
  EXPECT_TRUE(VerifyPassword(*b, "correct horse"));
  EXPECT_FALSE(VerifyPassword(*a, "correct horsE"));
  EXPECT_FALSE(VerifyPassword(*a, ""));
  EXPECT_FALSE(VerifyPassword("", "correct horse"));
  EXPECT_FALSE(VerifyPassword("$argon2i$garbage", "correct horse"));
}

TEST(UserValidation, NamesRolesPasswords) {
  EXPECT_TRUE(UserService::ValidateName("alice"));
  EXPECT_TRUE(UserService::ValidateName("a.b-c_9"));
  EXPECT_TRUE(UserService::ValidateName("0ps"));
  for (const char* bad : {"", "Alice", "-x", ".x", "a b", "a/b", "a:b", "é",
                          "abcdefghijklmnopqrstuvwxyz0123456"}) {
    auto st = UserService::ValidateName(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(UserService::ValidateRole("admin"));
  EXPECT_TRUE(UserService::ValidateRole("user"));
  EXPECT_FALSE(UserService::ValidateRole("root"));
  EXPECT_FALSE(UserService::ValidatePassword("short"));
  EXPECT_TRUE(UserService::ValidatePassword("longenough"));
  EXPECT_FALSE(UserService::ValidatePassword(std::string(1025, 'x')));
}

TEST_F(UserServiceTest, CreateCheckListDelete) {
  auto alice = users_->Create("alice", "alice-password", "user");
  ASSERT_TRUE(alice) << alice.error().ToString();
  EXPECT_EQ(alice->role, "user");
  auto dup = users_->Create("alice", "another-password", "admin");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_FALSE(users_->Create("bob", "pw", "user"));  // too short
  EXPECT_FALSE(users_->Create("bob", "bob-password", "root"));

  auto ok = users_->CheckPassword("alice", "alice-password");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->name, "alice");
  auto wrong = users_->CheckPassword("alice", "nope-nope");
  auto unknown = users_->CheckPassword("nobody", "alice-password");
  ASSERT_FALSE(wrong);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kUnauthenticated);
  // Nothing tells an unknown name from a wrong password.
  EXPECT_EQ(wrong.error().message(), unknown.error().message());
  EXPECT_FALSE(users_->CheckPassword("Bad Name", "alice-password"));

  // The stored record holds a hash, never the password.
  auto doc = store_->GetObject(UserService::kKind, "alice");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->dump().find("alice-password"), std::string::npos);
  EXPECT_FALSE(UserJson(*alice).contains("password_hash"));

  auto list = users_->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE(users_->Delete("alice"));
  auto gone = users_->Get("alice");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
}

TEST_F(UserServiceTest, PasswordChangeAndLastAdmin) {
  ASSERT_TRUE(users_->Create("admin", "first-password", "admin"));
  ASSERT_TRUE(users_->SetPassword("admin", "second-password"));
  EXPECT_FALSE(users_->CheckPassword("admin", "first-password"));
  EXPECT_TRUE(users_->CheckPassword("admin", "second-password"));
  EXPECT_FALSE(users_->SetPassword("ghost", "whatever-pw"));

  auto last = users_->Delete("admin");
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(users_->Create("root2", "root2-password", "admin"));
  EXPECT_TRUE(users_->Delete("admin"));
}

TEST_F(UserServiceTest, SetOrCreateAdmin) {
  auto empty = users_->Empty();
  ASSERT_TRUE(empty);
  EXPECT_TRUE(*empty);
  auto created = users_->SetOrCreateAdmin("admin", "init-password");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->role, "admin");
  ASSERT_TRUE(users_->SetOrCreateAdmin("admin", "other-password"));
  EXPECT_TRUE(users_->CheckPassword("admin", "other-password"));
  EXPECT_FALSE(*users_->Empty());
}

}  // namespace
}  // namespace vireo
