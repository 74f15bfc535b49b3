// The web UI's access rules and static file serving, without a server.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "api/access_policy.h"
#include "api/static_files.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;

TEST(AccessPolicy, AnonymousPaths) {
  EXPECT_TRUE(AllowsAnonymous("GET", "/1.0"));
  EXPECT_TRUE(AllowsAnonymous("GET", "/1.0/"));
  EXPECT_TRUE(AllowsAnonymous("POST", "/1.0/auth/login"));
  EXPECT_TRUE(AllowsAnonymous("POST", "/1.0/auth/logout"));
  EXPECT_TRUE(AllowsAnonymous("GET", "/1.0/operations/abc/websocket"));
  EXPECT_FALSE(AllowsAnonymous("GET", "/1.0/instances"));
  EXPECT_FALSE(AllowsAnonymous("GET", "/1.0/auth/session"));
  EXPECT_FALSE(AllowsAnonymous("GET", "/1.0/operations/abc"));
  EXPECT_FALSE(AllowsAnonymous("POST", "/1.0"));
  EXPECT_FALSE(AllowsAnonymous("GET", "/1.0/operations/abc/websocket/x"));
  EXPECT_TRUE(IsApiPath("/1.0"));
  EXPECT_TRUE(IsApiPath("/1.0/instances"));
  EXPECT_FALSE(IsApiPath("/1.01"));
  EXPECT_FALSE(IsApiPath("/"));
  EXPECT_FALSE(IsApiPath("/assets/x.js"));
}

TEST(AccessPolicy, CsrfHeaderForCookieWrites) {
  EXPECT_TRUE(CheckAccess("GET", "/1.0/instances", "admin", true, false));
  EXPECT_TRUE(CheckAccess("HEAD", "/1.0/instances", "admin", true, false));
  auto st = CheckAccess("POST", "/1.0/instances", "admin", true, false);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(CheckAccess("POST", "/1.0/instances", "admin", true, true));
  // Bearer tokens are not sent by browsers on their own: no CSRF risk.
  EXPECT_TRUE(CheckAccess("DELETE", "/1.0/instances/a", "admin", false, false));
}

TEST(AccessPolicy, UserRoleReadsAndOpensConsoles) {
  EXPECT_TRUE(CheckAccess("GET", "/1.0/instances", "user", true, false));
  EXPECT_TRUE(CheckAccess("GET", "/1.0/events", "user", true, false));
  EXPECT_TRUE(
      CheckAccess("POST", "/1.0/instances/vm1/console", "user", true, true));
  EXPECT_TRUE(CheckAccess("POST", "/1.0/auth/logout", "user", true, true));
  for (auto [method, path] : std::vector<std::pair<const char*, const char*>>{
           {"POST", "/1.0/instances"},
           {"PUT", "/1.0/instances/vm1/state"},
           {"DELETE", "/1.0/instances/vm1"},
           {"POST", "/1.0/images/upload"},
           {"GET", "/1.0/users"},
           {"GET", "/1.0/tokens"},
           {"POST", "/1.0/users"},
           {"PUT", "/1.0/users/alice/password"}}) {
    auto st = CheckAccess(method, path, "user", true, true);
    ASSERT_FALSE(st) << method << " " << path;
    EXPECT_EQ(st.error().code(), ErrorCode::kPermissionDenied);
  }
  EXPECT_FALSE(CheckAccess("GET", "/1.0/instances", "", false, false));
}

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-web-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/web/dist/assets");
    Write(dir_ + "/web/dist/index.html", "<html>ui</html>");
    Write(dir_ + "/web/dist/assets/app-1234.js", "console.log(1)");
    Write(dir_ + "/web/dist/favicon.ico", "ico");
    Write(dir_ + "/secret.txt", "do not serve");
    fs::create_symlink(dir_ + "/secret.txt", dir_ + "/web/dist/leak.txt");
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  std::string dir_;
};

TEST_F(StaticFilesTest, ServesFilesAndTheSinglePageApp) {
  StaticFiles files(dir_ + "/web/dist");
  auto index = files.Serve("GET", "/");
  EXPECT_EQ(index.status, 200u);
  EXPECT_EQ(index.body, "<html>ui</html>");
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(index.headers["Cache-Control"], "no-cache");

  auto js = files.Serve("GET", "/assets/app-1234.js");
  EXPECT_EQ(js.status, 200u);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(js.headers["Cache-Control"].find("immutable"), std::string::npos);
  EXPECT_EQ(files.Serve("GET", "/favicon.ico").content_type, "image/x-icon");

  // Client-side routes get index.html; missing files 404.
  auto route = files.Serve("GET", "/instances/vm1/console");
  EXPECT_EQ(route.status, 200u);
  EXPECT_EQ(route.body, "<html>ui</html>");
  EXPECT_EQ(files.Serve("GET", "/assets/missing.js").status, 404u);

  auto head = files.Serve("HEAD", "/");
  EXPECT_EQ(head.status, 200u);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(files.Serve("POST", "/").status, 405u);
}

TEST_F(StaticFilesTest, RefusesTraversal) {
  StaticFiles files(dir_ + "/web/dist");
  for (const char* bad :
       {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
        "/..%2fsecret.txt", "/a%5c..%5csecret.txt", "/%00"}) {
    auto r = files.Serve("GET", bad);
    EXPECT_EQ(r.status, 400u) << bad;
    EXPECT_EQ(r.body.find("do not serve"), std::string::npos) << bad;
  }
  // A symlink out of the web root is not followed.
  EXPECT_EQ(files.Serve("GET", "/leak.txt").status, 404u);
}

TEST_F(StaticFilesTest, MissingRootAndDefaultRoot) {
  StaticFiles none(dir_ + "/nope");
  EXPECT_EQ(none.Serve("GET", "/").status, 404u);
  // <repo>/build/vireod -> <repo>/web/dist
  EXPECT_EQ(StaticFiles::DefaultRoot(dir_ + "/build/vireod"),
            dir_ + "/web/dist");
  // <repo>/build/bin/vireod -> <repo>/web/dist (second choice)
  EXPECT_EQ(StaticFiles::DefaultRoot(dir_ + "/build/bin/vireod"),
            dir_ + "/web/dist");
  EXPECT_EQ(StaticFiles::ContentType("x.wasm"), "application/wasm");
  EXPECT_EQ(StaticFiles::ContentType("x.woff2"), "font/woff2");
  EXPECT_EQ(StaticFiles::ContentType("x.svg"), "image/svg+xml");
  EXPECT_EQ(StaticFiles::ContentType("x.js.map"), "application/json");
  EXPECT_EQ(StaticFiles::ContentType("x.bin"), "application/octet-stream");
}

}  // namespace
}  // namespace vireo
