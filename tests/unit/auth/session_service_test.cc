#include "auth/session_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "auth/token_service.h"
#include "store/sqlite/sqlite_store.h"

namespace vireo {
namespace {

class SessionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-sessions-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
    ASSERT_TRUE(users_->Create("alice", "alice-password", "user"));
    ASSERT_TRUE(users_->Create("root", "root-password", "admin"));
  }
  void TearDown() override {
    sessions_.reset();
    users_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A fresh store and services over the same database: a vireod restart.
  void Reopen() {
    sessions_.reset();
    users_.reset();
    store_.reset();
    auto store = SqliteStore::Open(dir_ + "/vireo.db");
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    users_ = std::make_unique<UserService>(store_.get());
    SessionService::Options o;
    o.now = [this] { return now_; };
    sessions_ = std::make_unique<SessionService>(store_.get(), users_.get(), o);
  }

  int64_t now_ = 1'000'000;
  std::string dir_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<UserService> users_;
  std::unique_ptr<SessionService> sessions_;
};

TEST_F(SessionServiceTest, LoginAuthenticateLogout) {
  auto s = sessions_->Login("alice", "alice-password");
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->token.size(), 64u);  // 256 bits, hex
  EXPECT_EQ(s->role, "user");
  // Only the hash is stored.
  auto docs = store_->ListObjects(SessionService::kKind);
  ASSERT_TRUE(docs);
  ASSERT_EQ(docs->size(), 1u);
  EXPECT_EQ(docs->front().dump().find(s->token), std::string::npos);
  EXPECT_EQ(docs->front()["id"], Sha256Hex(s->token));

  auto a = sessions_->Authenticate(s->token);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->user, "alice");
  auto other = sessions_->Login("alice", "alice-password");
  ASSERT_TRUE(other);
  EXPECT_NE(other->token, s->token);

  ASSERT_TRUE(sessions_->Logout(s->token));
  auto after = sessions_->Authenticate(s->token);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_TRUE(sessions_->Authenticate(other->token));
  EXPECT_TRUE(sessions_->Logout(s->token));  // twice is fine
  EXPECT_FALSE(sessions_->Authenticate("not-hex"));
  EXPECT_FALSE(sessions_->Authenticate(std::string(64, 'a')));
}

TEST_F(SessionServiceTest, SurvivesRestart) {
  auto s = sessions_->Login("root", "root-password");
  ASSERT_TRUE(s);
  Reopen();
  auto a = sessions_->Authenticate(s->token);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->role, "admin");
}

TEST_F(SessionServiceTest, IdleAndAbsoluteExpiry) {
  auto s = sessions_->Login("alice", "alice-password");
  ASSERT_TRUE(s);
  // Activity keeps a session alive...
  for (int i = 0; i < 15; ++i) {
    now_ += 11 * 3600;
    ASSERT_TRUE(sessions_->Authenticate(s->token)) << "hour " << i * 11;
  }
  // ...but never past 7 days (165 h so far).
  now_ += 11 * 3600;
  EXPECT_FALSE(sessions_->Authenticate(s->token));

  auto idle = sessions_->Login("alice", "alice-password");
  ASSERT_TRUE(idle);
  now_ += 12 * 3600 + 1;
  EXPECT_FALSE(sessions_->Authenticate(idle->token));
  sessions_->Purge();
  EXPECT_TRUE(store_->ListObjects(SessionService::kKind)->empty());
}

TEST_F(SessionServiceTest, RoleChangesAndDeletedUsersApplyAtOnce) {
  auto s = sessions_->Login("alice", "alice-password");
  auto keep = sessions_->Login("alice", "alice-password");
  ASSERT_TRUE(s && keep);
  ASSERT_TRUE(sessions_->RevokeUser("alice", keep->token));
  EXPECT_FALSE(sessions_->Authenticate(s->token));
  EXPECT_TRUE(sessions_->Authenticate(keep->token));
  ASSERT_TRUE(users_->Delete("alice"));
  EXPECT_FALSE(sessions_->Authenticate(keep->token));
}

TEST_F(SessionServiceTest, FailedLoginsLockTheNameOut) {
  for (int i = 0; i < 5; ++i) {
    auto bad = sessions_->Login("alice", "wrong-password");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kUnauthenticated) << i;
  }
  // Locked: even the right password is refused, for 30 s.
  auto locked = sessions_->Login("alice", "alice-password");
  ASSERT_FALSE(locked);
  EXPECT_EQ(locked.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(sessions_->RetryAfter("alice"), 30);
  // Other names are not affected.
  EXPECT_TRUE(sessions_->Login("root", "root-password"));
  now_ += 29;
  EXPECT_FALSE(sessions_->Login("alice", "alice-password"));
  now_ += 1;
  EXPECT_TRUE(sessions_->Login("alice", "alice-password"));
  // Unknown names are throttled too (no hint that they do not exist).
  for (int i = 0; i < 5; ++i) (void)sessions_->Login("ghost", "whatever-pw");
  EXPECT_EQ(sessions_->Login("ghost", "whatever-pw").error().code(),
            ErrorCode::kResourceExhausted);
}

}  // namespace
}  // namespace vireo
