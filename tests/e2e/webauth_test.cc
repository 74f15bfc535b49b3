// Web authentication end to end over HTTPS against a real vireod: logins and
// cookies, roles, CSRF, sessions across restarts, --init-admin, the static
// web UI and streamed image uploads. curl plays the browser.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct Reply {
  int status = 0;
  std::string headers;
  std::string body;
  Json json;
};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class WebAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vireo-webauth-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    work_ = tmpl;
    fs::create_directories(work_ + "/web/assets");
    std::ofstream(work_ + "/web/index.html") << "<html>vireo-ui</html>";
    std::ofstream(work_ + "/web/assets/app-1.js") << "console.log(1)";
    std::ofstream(work_ + "/secret.txt") << "top-secret";
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{
        "--web-root", work_ + "/web", "--max-upload-bytes", "8000000"});
    ASSERT_GT(daemon_->https_port(), 0);
    std::smatch m;
    const std::string log = ReadFile(daemon_->dir() + "/vireod.log");
    ASSERT_TRUE(std::regex_search(
        log, m, std::regex("user 'admin' with password: ([0-9a-f]+)")))
        << log;
    admin_password_ = m[1];
  }
  void TearDown() override {
    daemon_.reset();
    fs::remove_all(work_);
  }

  std::string Url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(daemon_->https_port()) + path;
  }

  // One curl exchange; extra: more curl arguments (cookie jar, headers, ...).
  Reply Curl(const std::string& method, const std::string& path,
             std::vector<std::string> extra = {}) {
    const std::string head = work_ + "/head", body = work_ + "/body";
    fs::remove(head);
    fs::remove(body);
    std::vector<std::string> argv = {
        "curl", "-sk", "--path-as-is", "-X",           method, "-D",     head,
        "-o",   body,  "-w",           "%{http_code}", "-H",   "Expect:"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(Url(path));
    auto r = RunCommand(argv, 120s);
    Reply reply;
    EXPECT_TRUE(r) << r.error().ToString();
    if (!r) return reply;
    reply.status = std::atoi(r->out.c_str());
    reply.headers = ReadFile(head);
    reply.body = ReadFile(body);
    reply.json = Json::parse(reply.body, nullptr, false);
    return reply;
  }
  // Logs in and keeps the cookie in jar.
  Reply Login(const std::string& user, const std::string& password,
              const std::string& jar) {
    return Curl(
        "POST", "/1.0/auth/login",
        {"-c", jar, "-H", "Content-Type: application/json", "--data-binary",
         Json{{"username", user}, {"password", password}}.dump()});
  }
  std::string Jar(const std::string& name) const { return work_ + "/" + name; }
  static std::vector<std::string> WithCookie(const std::string& jar,
                                             bool csrf) {
    std::vector<std::string> a = {"-b", jar};
    if (csrf) a.insert(a.end(), {"-H", "X-Vireo-Request: 1"});
    return a;
  }

  std::string work_;
  std::unique_ptr<Daemon> daemon_;
  std::string admin_password_;
};

TEST_F(WebAuth, LoginSetsASecureCookieAndWrongPasswordsAre401) {
  Reply bad = Login("admin", "wrong-password", Jar("bad"));
  EXPECT_EQ(bad.status, 401) << bad.body;
  Reply unknown = Login("nobody", "wrong-password", Jar("bad"));
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(bad.json.value("error", ""), unknown.json.value("error", ""));

  Reply ok = Login("admin", admin_password_, Jar("a"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json["metadata"]["username"], "admin");
  EXPECT_EQ(ok.json["metadata"]["role"], "admin");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      ok.headers, m,
      std::regex("Set-Cookie: vireo_session=[^\r\n]*", std::regex::icase)))
      << ok.headers;
  const std::string cookie = m[0];
  EXPECT_NE(cookie.find("; Secure"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; Path=/"), std::string::npos) << cookie;

  // Five failures lock the name out for 30 s, even for the right password.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(Login("admin", "wrong-password", Jar("bad")).status, 401);
  Reply locked = Login("admin", admin_password_, Jar("bad"));
  EXPECT_EQ(locked.status, 429) << locked.body;
  EXPECT_NE(locked.headers.find("Retry-After:"), std::string::npos);

  Reply session = Curl("GET", "/1.0/auth/session", WithCookie(Jar("a"), false));
  ASSERT_EQ(session.status, 200) << session.body;
  EXPECT_EQ(session.json["metadata"]["username"], "admin");
}

TEST_F(WebAuth, NoCredentialsNoCsrfHeaderAndRoles) {
  EXPECT_EQ(Curl("GET", "/1.0/instances").status, 401);
  EXPECT_EQ(Curl("GET", "/1.0/auth/session").status, 401);
  EXPECT_EQ(Curl("POST", "/1.0/instances", {"--data-binary", "{}"}).status,
            401);
  Reply minimal = Curl("GET", "/1.0");
  ASSERT_EQ(minimal.status, 200);
  EXPECT_FALSE(minimal.json["metadata"].contains("environment"));

  ASSERT_EQ(Login("admin", admin_password_, Jar("a")).status, 200);
  const std::string bob = Json{
      {"name", "bob"},
      {"password", "bob-password"},
      {"role", "user"}}.dump();
  // A cookie alone cannot change anything: a cross-site form could send it.
  Reply csrf =
      Curl("POST", "/1.0/users", {"-b", Jar("a"), "--data-binary", bob});
  EXPECT_EQ(csrf.status, 403) << csrf.body;
  Reply created = Curl("POST", "/1.0/users", [&] {
    auto a = WithCookie(Jar("a"), true);
    a.insert(a.end(), {"--data-binary", bob});
    return a;
  }());
  ASSERT_EQ(created.status, 201) << created.body;

  ASSERT_EQ(Login("bob", "bob-password", Jar("b")).status, 200);
  EXPECT_EQ(Curl("GET", "/1.0/instances", WithCookie(Jar("b"), false)).status,
            200);
  auto post = WithCookie(Jar("b"), true);
  post.insert(post.end(),
              {"--data-binary", Json{{"name", "vm1"}, {"cpus", 1}}.dump()});
  Reply denied = Curl("POST", "/1.0/instances", post);
  EXPECT_EQ(denied.status, 403) << denied.body;
  EXPECT_EQ(Curl("GET", "/1.0/users", WithCookie(Jar("b"), false)).status, 403);

  // The CLI manages the same users over the local socket.
  const std::string cli =
      std::string(VIREO_BIN_DIR) + "/vireo --socket " + daemon_->socket();
  auto made = RunCommand({"sh", "-c",
                          "echo carol-password | " + cli +
                              " user create carol --role admin "
                              "--password-stdin"});
  ASSERT_TRUE(made);
  EXPECT_EQ(made->status.code, 0) << made->err;
  EXPECT_EQ(Login("carol", "carol-password", Jar("c")).status, 200);
  auto changed = RunCommand({"sh", "-c",
                             "echo carol-password-2 | " + cli +
                                 " user passwd carol --password-stdin"});
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->status.code, 0) << changed->err;
  // A new password ends the user's sessions.
  EXPECT_EQ(Curl("GET", "/1.0/instances", WithCookie(Jar("c"), false)).status,
            401);
  EXPECT_EQ(Login("carol", "carol-password-2", Jar("c")).status, 200);
  std::string out, err;
  ASSERT_EQ(daemon_->Cli({"user", "list"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("bob"), std::string::npos) << out;
  ASSERT_EQ(daemon_->Cli({"user", "delete", "bob"}, &out, &err), 0) << err;
  // Deleting a user ends its sessions.
  EXPECT_EQ(Curl("GET", "/1.0/instances", WithCookie(Jar("b"), false)).status,
            401);
}

TEST_F(WebAuth, CookieWebSocketsMustComeFromOurOrigin) {
  ASSERT_EQ(Login("admin", admin_password_, Jar("a")).status, 200);
  auto upgrade = [&](const std::string& origin) {
    auto a = WithCookie(Jar("a"), false);
    a.insert(a.end(), {"--max-time", "3", "-H", "Connection: Upgrade", "-H",
                       "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
                       "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                       "-H", "Origin: " + origin});
    return Curl("GET", "/1.0/events", a).status;
  };
  EXPECT_EQ(upgrade("https://evil.example"), 403);
  EXPECT_EQ(
      upgrade("https://127.0.0.1:" + std::to_string(daemon_->https_port())),
      101);
}

TEST_F(WebAuth, LogoutEndsTheSessionAndSessionsSurviveRestart) {
  ASSERT_EQ(Login("admin", admin_password_, Jar("a")).status, 200);
  ASSERT_EQ(Login("admin", admin_password_, Jar("keep")).status, 200);
  Reply out = Curl("POST", "/1.0/auth/logout", WithCookie(Jar("a"), true));
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(Curl("GET", "/1.0/instances", WithCookie(Jar("a"), false)).status,
            401);

  daemon_->Stop();
  daemon_->Start();
  ASSERT_GT(daemon_->https_port(), 0);
  Reply after = Curl("GET", "/1.0/instances", WithCookie(Jar("keep"), false));
  EXPECT_EQ(after.status, 200) << after.body;
  // No second "first admin" on a restart.
  const std::string log = ReadFile(daemon_->dir() + "/vireod.log");
  EXPECT_EQ(CountOccurrences(log, "*** vireod: created web UI user"), 1);
}

TEST_F(WebAuth, InitAdminSetsThePassword) {
  const std::string vireod = std::string(VIREO_BIN_DIR) + "/vireod";
  auto r = RunCommand({"env", "VIREO_ADMIN_PASSWORD=from-env-password", vireod,
                       "--init-admin", "--data-dir", daemon_->dir()});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status.code, 0) << r->err;
  EXPECT_EQ(Login("admin", admin_password_, Jar("old")).status, 401);
  EXPECT_EQ(Login("admin", "from-env-password", Jar("a")).status, 200);

  r = RunCommand({"sh", "-c",
                  "echo from-stdin-password | env -u VIREO_ADMIN_PASSWORD " +
                      vireod + " --init-admin --data-dir " + daemon_->dir()});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status.code, 0) << r->err;
  EXPECT_EQ(Login("admin", "from-stdin-password", Jar("b")).status, 200);

  r = RunCommand({"sh", "-c",
                  "echo short | env -u VIREO_ADMIN_PASSWORD " + vireod +
                      " --init-admin --data-dir " + daemon_->dir()});
  ASSERT_TRUE(r);
  EXPECT_NE(r->status.code, 0);
}

TEST_F(WebAuth, ServesTheUiAndRefusesTraversal) {
  Reply index = Curl("GET", "/");
  ASSERT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<html>vireo-ui</html>");
  EXPECT_NE(index.headers.find("text/html"), std::string::npos);
  EXPECT_EQ(Curl("GET", "/instances/vm1").body, "<html>vireo-ui</html>");
  Reply js = Curl("GET", "/assets/app-1.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_NE(js.headers.find("text/javascript"), std::string::npos);
  EXPECT_EQ(Curl("GET", "/assets/none.js").status, 404);
  for (const char* bad :
       {"/../secret.txt", "/../../etc/passwd", "/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt"}) {
    Reply r = Curl("GET", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.find("top-secret"), std::string::npos) << bad;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << bad;
  }
}

TEST_F(WebAuth, UploadsAnImageAndRefusesOversizedOnes) {
  const std::string small = work_ + "/small.qcow2";
  ASSERT_TRUE(
      RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", small, "64M"}));
  ASSERT_EQ(Login("admin", admin_password_, Jar("a")).status, 200);
  auto up = WithCookie(Jar("a"), true);
  up.insert(up.end(), {"-H", "Content-Type: application/octet-stream",
                       "--data-binary", "@" + small});
  EXPECT_EQ(Curl("POST", "/1.0/images/upload?name=up1",
                 {"--data-binary", "@" + small})
                .status,
            401);
  Reply accepted = Curl("POST", "/1.0/images/upload?name=up1&os=linux", up);
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const std::string op = accepted.json.value("operation", "");
  auto c = daemon_->Client();
  ASSERT_TRUE(c);
  auto done = c->Call("GET", op + "/wait?timeout=60");
  ASSERT_TRUE(done) << done.error().ToString();
  EXPECT_EQ((*done)["status"], "Success") << done->dump();
  auto image = c->Call("GET", "/1.0/images/up1");
  ASSERT_TRUE(image) << image.error().ToString();
  EXPECT_EQ((*image)["format"], "qcow2");
  EXPECT_EQ((*image)["os"], "linux");
  EXPECT_EQ((*image)["virtual_size"], 64 << 20);

  // Over --max-upload-bytes: 413, with a declared length and chunked.
  const std::string big = work_ + "/big.raw";
  {
    std::ofstream f(big, std::ios::binary);
    f.seekp(9'000'000);
    f.put('\0');
  }
  auto too_big = WithCookie(Jar("a"), true);
  too_big.insert(too_big.end(), {"--data-binary", "@" + big});
  EXPECT_EQ(Curl("POST", "/1.0/images/upload?name=big", too_big).status, 413);
  too_big.insert(too_big.end(), {"-H", "Transfer-Encoding: chunked"});
  EXPECT_EQ(Curl("POST", "/1.0/images/upload?name=big", too_big).status, 413);
  // Nothing is left behind in the image store but the one image.
  int files = 0;
  for (const auto& e : fs::directory_iterator(daemon_->dir() + "/images")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
  // Bad queries are refused before the body is read.
  EXPECT_EQ(Curl("POST", "/1.0/images/upload", up).status, 400);
  EXPECT_EQ(Curl("POST", "/1.0/images/upload?name=-bad", up).status, 400);
  EXPECT_EQ(Curl("POST", "/1.0/images/upload?name=x&foo=1", up).status, 400);
  // A second upload under a taken name is refused and cleaned up.
  Reply taken = Curl("POST", "/1.0/images/upload?name=up1", up);
  EXPECT_EQ(taken.status, 409) << taken.body;
  files = 0;
  for (const auto& e : fs::directory_iterator(daemon_->dir() + "/images")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace vireo::e2e
