// Every kind of bad request gets a 4xx (or a failed operation) naming the
// problem, and leaves no instance, file or process behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class BadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { daemon_ = new Daemon(); }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    c_ = daemon_->Client();
    ASSERT_TRUE(c_);
  }
  // Sends a raw body; returns status and the error text.
  std::pair<int, std::string> Post(const std::string& target,
                                   const std::string& raw) {
    auto r = c_->RawRequest("POST", target, raw);
    if (!r) return {-1, r.error().ToString()};
    auto j = Json::parse(r->body, nullptr, false);
    std::string msg = j.is_object() && j.contains("error")
                          ? j["error"].get<std::string>()
                          : r->body;
    return {r->status, msg};
  }
  std::pair<int, std::string> PostJson(const std::string& target,
                                       const Json& body) {
    return Post(target, body.dump());
  }
  void ExpectNothingLeft() {
    auto list = c_->Call("GET", "/1.0/instances");
    ASSERT_TRUE(list);
    for (const auto& url : *list)
      EXPECT_EQ(url.get<std::string>().find("/1.0/instances/bad"),
                std::string::npos)
          << url;
    size_t files = 0;
    std::string storage = daemon_->dir() + "/storage/default";
    if (fs::exists(storage))
      for (auto& e : fs::recursive_directory_iterator(storage))
        files += e.is_regular_file();
    EXPECT_EQ(files, 0u) << "files left in " << storage;
  }
  static Daemon* daemon_;
  std::unique_ptr<ApiClient> c_;
};
Daemon* BadInput::daemon_ = nullptr;

TEST_F(BadInput, MalformedJson) {
  auto [status, msg] = Post("/1.0/instances", "{\"name\": \"bad1\", ");
  EXPECT_EQ(status, 400);
  EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;
  ExpectNothingLeft();
}

TEST_F(BadInput, UnknownFieldIsNamed) {
  Json spec = GuestSpec("bad2");
  spec["colour"] = "blue";
  auto [status, msg] = PostJson("/1.0/instances", spec);
  EXPECT_EQ(status, 400);
  EXPECT_NE(msg.find("colour"), std::string::npos) << msg;
  ExpectNothingLeft();
}

TEST_F(BadInput, WrongTypesAndAbsurdSizes) {
  struct Case {
    const char* field;
    Json value;
  } cases[] = {
      {"cpus", "two"},    {"cpus", -1},
      {"cpus", 0},        {"cpus", 100000},
      {"memory", -5},     {"memory", "lots"},
      {"memory", "900T"}, {"memory", "1K"},
      {"name", 42},       {"cmdline", Json::array()},
  };
  for (const auto& tc : cases) {
    Json spec = GuestSpec("bad3");
    spec[tc.field] = tc.value;
    auto [status, msg] = PostJson("/1.0/instances", spec);
    EXPECT_EQ(status, 400) << tc.field << "=" << tc.value.dump() << ": " << msg;
    std::string field = tc.field;
    EXPECT_NE(msg.find(field == "name" ? "name" : field), std::string::npos)
        << tc.field << ": " << msg;
  }
  Json spec = GuestSpec("bad3");
  spec["disks"] = Json::array({{{"size", "-1G"}}});
  EXPECT_EQ(PostJson("/1.0/instances", spec).first, 400);
  spec["disks"] = Json::array({{{"size", "999999T"}}});
  EXPECT_EQ(PostJson("/1.0/instances", spec).first, 400);
  ExpectNothingLeft();
}

TEST_F(BadInput, InvalidNames) {
  for (const std::string& name :
       std::vector<std::string>{"a/b", "..", "has space", std::string(64, 'a'),
                                "", "-x", "x-", "bad\nname", "../etc"}) {
    auto [status, msg] = PostJson("/1.0/instances", GuestSpec(name));
    EXPECT_EQ(status, 400) << "name '" << name << "': " << msg;
    EXPECT_NE(msg.find("name"), std::string::npos) << msg;
  }
  // 63 characters is fine.
  std::string ok(63, 'b');
  auto created = c_->CallAndWait("POST", "/1.0/instances", GuestSpec(ok));
  EXPECT_TRUE(created) << created.error().ToString();
  EXPECT_TRUE(c_->CallAndWait("DELETE", "/1.0/instances/" + ok));
  // Names in paths are checked too.
  auto r = c_->Request("GET", "/1.0/instances/..");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->status == 400 || r->status == 404) << r->status;
}

TEST_F(BadInput, DuplicateName) {
  ASSERT_TRUE(c_->CallAndWait("POST", "/1.0/instances", GuestSpec("dup")));
  auto [status, msg] = PostJson("/1.0/instances", GuestSpec("dup"));
  EXPECT_EQ(status, 409);
  EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
  auto list = c_->Call("GET", "/1.0/instances");
  ASSERT_TRUE(list);
  int n = 0;
  for (const auto& u : *list) n += u == "/1.0/instances/dup";
  EXPECT_EQ(n, 1);
  EXPECT_TRUE(c_->CallAndWait("DELETE", "/1.0/instances/dup"));
}

TEST_F(BadInput, ActionsIllegalInTheCurrentState) {
  ASSERT_TRUE(c_->CallAndWait("POST", "/1.0/instances", GuestSpec("states")));
  for (std::string action : {"stop", "pause", "resume"}) {
    auto r = c_->Request("PUT", "/1.0/instances/states/state",
                         Json{{"action", action}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 409) << action << ": " << r->body;
  }
  auto bad = c_->Request("PUT", "/1.0/instances/states/state",
                         Json{{"action", "explode"}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  ASSERT_TRUE(c_->CallAndWait("PUT", "/1.0/instances/states/state",
                              Json{{"action", "start"}}));
  auto again = c_->Request("PUT", "/1.0/instances/states/state",
                           Json{{"action", "start"}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);
  auto resume = c_->Request("PUT", "/1.0/instances/states/state",
                            Json{{"action", "resume"}});
  ASSERT_TRUE(resume);
  EXPECT_EQ(resume->status, 409);
  // Delete is refused while running, allowed with force.
  auto del = c_->Request("DELETE", "/1.0/instances/states");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 409) << del->body;
  EXPECT_NE(del->body.find("running"), std::string::npos);
  int pid = GetInstance(*c_, "states")["status"]["pid"];
  EXPECT_TRUE(ProcessAlive(pid));
  ASSERT_TRUE(c_->CallAndWait("DELETE", "/1.0/instances/states?force=1"));
  EXPECT_FALSE(ProcessAlive(pid));
  auto gone = c_->Request("GET", "/1.0/instances/states");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
}

TEST_F(BadInput, MissingKernelFile) {
  Json spec = GuestSpec("bad4");
  spec["kernel"] = "/nonexistent/vmlinuz";
  auto [status, msg] = PostJson("/1.0/instances", spec);
  EXPECT_EQ(status, 400);
  EXPECT_NE(msg.find("/nonexistent/vmlinuz"), std::string::npos) << msg;
  ExpectNothingLeft();
}

TEST_F(BadInput, QemuThatFailsToStartLeavesNoProcess) {
  // A file that exists but is no kernel: QEMU refuses to load it.
  std::string junk = daemon_->dir() + "/junk-kernel";
  std::ofstream(junk) << std::string(4096, 'x');
  Json spec = GuestSpec("junk");
  spec["kernel"] = junk;
  ASSERT_TRUE(c_->CallAndWait("POST", "/1.0/instances", spec));
  auto started = c_->CallAndWait("PUT", "/1.0/instances/junk/state",
                                 Json{{"action", "start"}});
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message().find("junk"), std::string::npos)
      << started.error().message();
  Json j = GetInstance(*c_, "junk");
  EXPECT_EQ(j["status"]["state"], "stopped");
  EXPECT_FALSE(j["status"]["last_error"].get<std::string>().empty());
  auto ps = RunCommand({"pgrep", "-f", j["id"].get<std::string>()});
  ASSERT_TRUE(ps);
  EXPECT_TRUE(ps->out.empty()) << "QEMU left running: " << ps->out;
  EXPECT_TRUE(c_->CallAndWait("DELETE", "/1.0/instances/junk"));
}

TEST_F(BadInput, CorruptDiskImageFailsCreateAndLeavesNothing) {
  std::string bad = daemon_->dir() + "/corrupt.qcow2";
  {
    // A qcow2 magic with a garbage header.
    std::ofstream f(bad, std::ios::binary);
    f << "QFI\xfb" << std::string(100, '\xff');
  }
  Json spec = GuestSpec("bad5");
  spec["disks"] = Json::array({{{"source", bad}}});
  auto r = c_->CallAndWait("POST", "/1.0/instances", spec);
  ASSERT_FALSE(r);
  ExpectNothingLeft();
}

TEST_F(BadInput, OversizedRequestIsRefused) {
  Json spec = GuestSpec("bad6");
  spec["cmdline"] = std::string(2 << 20, 'a');
  auto [status, msg] = PostJson("/1.0/instances", spec);
  EXPECT_EQ(status, 413) << msg;
  ExpectNothingLeft();
}

TEST_F(BadInput, MoreThanTheHostHasIsRefused) {
  Json spec = GuestSpec("bad7");
  spec["memory"] = "2T";
  auto [status, msg] = PostJson("/1.0/instances", spec);
  EXPECT_EQ(status, 422) << msg;
  EXPECT_NE(msg.find("memory"), std::string::npos) << msg;
  spec["memory"] = "256M";
  spec["cpus"] = 64;
  auto [s2, m2] = PostJson("/1.0/instances", spec);
  EXPECT_EQ(s2, 422) << m2;
  EXPECT_NE(m2.find("CPU"), std::string::npos) << m2;
  ExpectNothingLeft();
}

TEST_F(BadInput, UnknownRoutesAndMethods) {
  auto r = c_->Request("GET", "/1.0/nothing-here");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  auto m = c_->Request("PATCH", "/1.0/operations");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 405);
  auto missing = c_->Request("GET", "/1.0/instances/ghost");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("ghost"), std::string::npos);
}

TEST_F(BadInput, HttpsNeedsAValidToken) {
  ASSERT_GT(daemon_->https_port(), 0);
  std::string url =
      "https://127.0.0.1:" + std::to_string(daemon_->https_port());
  auto anon = ApiClient::Create({"", url, ""});
  ASSERT_TRUE(anon);
  auto r = (*anon)->Request("GET", "/1.0/instances");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 401);
  auto wrong = ApiClient::Create({"", url, std::string(64, 'f')});
  ASSERT_TRUE(wrong);
  auto rw = (*wrong)->Request("GET", "/1.0/instances");
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->status, 401);

  std::string out, err;
  ASSERT_EQ(daemon_->Cli({"--json", "token", "create", "e2e"}, &out, &err), 0)
      << err;
  Json tok = Json::parse(out);
  std::string secret = tok["secret"];
  ASSERT_EQ(daemon_->Cli({"--remote", url, "--token", secret, "--json", "list"},
                         &out, &err),
            0)
      << err;
  EXPECT_TRUE(Json::parse(out).is_array());
  EXPECT_NE(
      daemon_->Cli({"--remote", url, "--token", "nope", "list"}, &out, &err),
      0);
  EXPECT_NE(err.find("rror"), std::string::npos) << err;
  ASSERT_EQ(daemon_->Cli({"token", "revoke", "e2e"}, &out, &err), 0) << err;
  EXPECT_NE(
      daemon_->Cli({"--remote", url, "--token", secret, "list"}, &out, &err),
      0);
}

}  // namespace
}  // namespace vireo::e2e
