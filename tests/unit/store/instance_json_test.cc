#include <gtest/gtest.h>

#include "core/instance.h"

namespace vireo {
namespace {

Instance SampleInstance() {
  Instance inst;
  inst.id = "0123456789abcdef";
  inst.created_at = 1700000000;
  inst.config.name = "web1";
  inst.config.cpus = 2;
  inst.config.memory_bytes = 3ull << 30;
  inst.config.kernel = "/boot/vmlinuz";
  inst.config.initrd = "/boot/initrd.img";
  inst.config.cmdline = "console=ttyS0 quiet";
  inst.config.disks = {
      {"root", "/pool/0123/root.qcow2", 10ull << 30, "/img/debian.qcow2"},
      {"disk1", "/pool/0123/disk1.qcow2", 1ull << 30, ""}};
  inst.config.nics = {{"eth0", "user", "52:54:00:12:34:56"}};
  inst.config.restart_policy = RestartPolicy::kOnFailure;
  inst.config.options = {{"snapshots.schedule", "@daily"},
                         {"snapshots.expiry", "7d"}};
  inst.status.state = InstanceState::kRunning;
  inst.status.pid = 4242;
  inst.status.last_error = "previous crash";
  inst.status.started_at = 1700000100;
  inst.status.restart_count = 3;
  inst.status.stop_requested = true;
  return inst;
}

void ExpectSame(const Instance& a, const Instance& b) {
  EXPECT_EQ(ToJson(a), ToJson(b));
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.config.name, b.config.name);
  EXPECT_EQ(a.config.memory_bytes, b.config.memory_bytes);
  EXPECT_EQ(a.config.options, b.config.options);
  ASSERT_EQ(a.config.disks.size(), b.config.disks.size());
  for (size_t i = 0; i < a.config.disks.size(); ++i) {
    EXPECT_EQ(a.config.disks[i].path, b.config.disks[i].path);
    EXPECT_EQ(a.config.disks[i].size_bytes, b.config.disks[i].size_bytes);
    EXPECT_EQ(a.config.disks[i].source, b.config.disks[i].source);
  }
  ASSERT_EQ(a.config.nics.size(), b.config.nics.size());
  for (size_t i = 0; i < a.config.nics.size(); ++i) {
    EXPECT_EQ(a.config.nics[i].mac, b.config.nics[i].mac);
  }
  EXPECT_EQ(a.config.restart_policy, b.config.restart_policy);
  EXPECT_EQ(a.status.state, b.status.state);
  EXPECT_EQ(a.status.pid, b.status.pid);
  EXPECT_EQ(a.status.last_error, b.status.last_error);
  EXPECT_EQ(a.status.started_at, b.status.started_at);
  EXPECT_EQ(a.status.restart_count, b.status.restart_count);
  EXPECT_EQ(a.status.stop_requested, b.status.stop_requested);
}

TEST(InstanceEnumsTest, StateNamesRoundTrip) {
  for (auto s : {InstanceState::kStopped, InstanceState::kStarting,
                 InstanceState::kRunning, InstanceState::kPaused,
                 InstanceState::kStopping, InstanceState::kError}) {
    auto parsed = ParseInstanceState(ToString(s));
    ASSERT_TRUE(parsed) << ToString(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(ToString(InstanceState::kRunning), "running");
  EXPECT_EQ(ToString(InstanceState::kError), "error");
  auto bad = ParseInstanceState("Running");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST(InstanceEnumsTest, PolicyNamesRoundTrip) {
  EXPECT_EQ(ToString(RestartPolicy::kNever), "never");
  EXPECT_EQ(ToString(RestartPolicy::kOnFailure), "on-failure");
  EXPECT_EQ(ToString(RestartPolicy::kAlways), "always");
  for (auto p : {RestartPolicy::kNever, RestartPolicy::kOnFailure,
                 RestartPolicy::kAlways}) {
    auto parsed = ParseRestartPolicy(ToString(p));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_FALSE(ParseRestartPolicy("sometimes"));
  EXPECT_FALSE(ParseRestartPolicy(""));
}

TEST(InstanceJsonTest, FieldNamesAreTheDocumentedOnes) {
  Json j = ToJson(SampleInstance());
  EXPECT_EQ(j["id"], "0123456789abcdef");
  EXPECT_EQ(j["name"], "web1");
  EXPECT_EQ(j["created_at"], 1700000000);
  EXPECT_EQ(j["config"]["memory"], 3ull << 30);
  EXPECT_EQ(j["config"]["cpus"], 2);
  EXPECT_EQ(j["config"]["disks"][0]["size"], 10ull << 30);
  EXPECT_EQ(j["config"]["disks"][0]["source"], "/img/debian.qcow2");
  EXPECT_EQ(j["config"]["nics"][0]["type"], "user");
  EXPECT_EQ(j["config"]["restart_policy"], "on-failure");
  EXPECT_EQ(j["status"]["state"], "running");
  EXPECT_EQ(j["status"]["pid"], 4242);
  EXPECT_EQ(j["status"]["stop_requested"], true);
  EXPECT_EQ(j["status"]["restart_count"], 3);
}

TEST(InstanceJsonTest, RoundTripThroughText) {
  Instance original = SampleInstance();
  auto reparsed = ParseJson(ToJson(original).dump());
  ASSERT_TRUE(reparsed);
  auto back = InstanceFromJson(*reparsed);
  ASSERT_TRUE(back) << back.error().ToString();
  ExpectSame(original, *back);
}

TEST(InstanceJsonTest, ConfigAndStatusRoundTripAlone) {
  Instance original = SampleInstance();
  auto config = InstanceConfigFromJson(ToJson(original.config));
  ASSERT_TRUE(config);
  EXPECT_EQ(ToJson(*config), ToJson(original.config));
  auto status = InstanceStatusFromJson(ToJson(original.status));
  ASSERT_TRUE(status);
  EXPECT_EQ(ToJson(*status), ToJson(original.status));
}

TEST(InstanceJsonTest, DefaultsRoundTrip) {
  Instance inst;
  inst.id = "00000000000000ff";
  inst.config.name = "minimal";
  auto back = InstanceFromJson(ToJson(inst));
  ASSERT_TRUE(back);
  ExpectSame(inst, *back);
  EXPECT_TRUE(back->config.disks.empty());
  EXPECT_EQ(back->status.state, InstanceState::kStopped);
}

TEST(InstanceJsonTest, MissingOptionalFieldsTakeDefaults) {
  auto config = InstanceConfigFromJson(Json{{"name", "a"}});
  ASSERT_TRUE(config);
  EXPECT_EQ(config->cpus, 1);
  EXPECT_EQ(config->memory_bytes, 256ull << 20);
  EXPECT_EQ(config->restart_policy, RestartPolicy::kNever);
}

struct BadCase {
  const char* label;
  Json doc;
  const char* mentions;  // the error must name what is wrong
};

TEST(InstanceJsonTest, BadDocumentsAreErrorsNotThrows) {
  Json good = ToJson(SampleInstance());
  auto with = [&](const Json::json_pointer& ptr, Json value) {
    Json j = good;
    j[ptr] = std::move(value);
    return j;
  };
  std::vector<BadCase> cases = {
      {"not an object", Json::array({1, 2}), "object"},
      {"string", Json("hello"), "object"},
      {"no id",
       [&] {
         Json j = good;
         j.erase("id");
         return j;
       }(),
       "id"},
      {"no config",
       [&] {
         Json j = good;
         j.erase("config");
         return j;
       }(),
       "config"},
      {"cpus string", with(Json::json_pointer("/config/cpus"), "two"), "cpus"},
      {"memory negative", with(Json::json_pointer("/config/memory"), -1),
       "memory"},
      {"memory float", with(Json::json_pointer("/config/memory"), 1.5),
       "memory"},
      {"cpus huge", with(Json::json_pointer("/config/cpus"), 1ull << 40),
       "cpus"},
      {"disks object",
       with(Json::json_pointer("/config/disks"), Json::object()), "disks"},
      {"disk size string",
       with(Json::json_pointer("/config/disks/0/size"), "10G"), "size"},
      {"disk no name",
       with(Json::json_pointer("/config/disks/1"), Json{{"path", "/x"}}),
       "disks[1]"},
      {"nic number", with(Json::json_pointer("/config/nics/0"), 5), "nics[0]"},
      {"policy",
       with(Json::json_pointer("/config/restart_policy"), "sometimes"),
       "sometimes"},
      {"state", with(Json::json_pointer("/status/state"), "flying"), "flying"},
      {"pid string", with(Json::json_pointer("/status/pid"), "12"), "pid"},
      {"stop_requested int",
       with(Json::json_pointer("/status/stop_requested"), 1), "stop_requested"},
      {"name mismatch", with(Json::json_pointer("/name"), "other"), "other"},
      {"status array", with(Json::json_pointer("/status"), Json::array()),
       "status"},
  };
  for (const auto& c : cases) {
    Result<Instance> r = InstanceFromJson(c.doc);
    ASSERT_FALSE(r) << c.label;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << c.label;
    EXPECT_NE(r.error().message().find(c.mentions), std::string::npos)
        << c.label << ": " << r.error().message();
  }
}

TEST(InstanceJsonTest, OptionsRoundTripAndDefault) {
  Instance inst = SampleInstance();
  auto back = InstanceFromJson(ToJson(inst));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->config.options.at("snapshots.schedule"), "@daily");
  // Documents written before options existed load with none.
  Json old = ToJson(inst);
  old["config"].erase("options");
  auto legacy = InstanceFromJson(old);
  ASSERT_TRUE(legacy) << legacy.error().ToString();
  EXPECT_TRUE(legacy->config.options.empty());
}

TEST(InstanceJsonTest, OptionsMustBeStrings) {
  Json j = ToJson(SampleInstance());
  j["config"]["options"] = {{"snapshots.expiry", 7}};
  auto bad = InstanceFromJson(j);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("snapshots.expiry"), std::string::npos);
  j["config"]["options"] = Json::array();
  EXPECT_FALSE(InstanceFromJson(j));
}

}  // namespace
}  // namespace vireo
