#include "core/instance_options.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

using std::chrono::seconds;

TEST(InstanceOptions, Schedules) {
  EXPECT_EQ(ParseSchedule("@hourly")->interval, seconds(3600));
  EXPECT_EQ(ParseSchedule("@daily")->interval, seconds(86400));
  EXPECT_EQ(ParseSchedule("@weekly")->interval, seconds(7 * 86400));
  EXPECT_EQ(ParseSchedule("every 30m")->interval, seconds(1800));
  EXPECT_EQ(ParseSchedule("every 2s")->interval, seconds(2));
  EXPECT_EQ(ParseSchedule("every 3d")->interval, seconds(3 * 86400));
  for (const char* bad :
       {"", "@monthly", "every", "every 0m", "every 5", "every -1h", "every 1w",
        "every 1.5h", "0 * * * *", "every  5m", "every 5m ", "EVERY 5m"}) {
    EXPECT_FALSE(ParseSchedule(bad)) << bad;
  }
}

TEST(InstanceOptions, Durations) {
  EXPECT_EQ(*ParseDuration("7d"), seconds(7 * 86400));
  EXPECT_EQ(*ParseDuration("12h"), seconds(12 * 3600));
  EXPECT_EQ(*ParseDuration("5m"), seconds(300));
  EXPECT_EQ(*ParseDuration("2w"), seconds(14 * 86400));
  EXPECT_EQ(*ParseDuration("10s"), seconds(10));
  for (const char* bad : {"", "d", "0d", "7", "7y", "-1d", "1e3d", " 7d",
                          "99999999999999999999d", "100000w"}) {
    EXPECT_FALSE(ParseDuration(bad)) << bad;
  }
}

TEST(InstanceOptions, RegistryChecksKeysAndValues) {
  EXPECT_TRUE(ValidateInstanceOption("snapshots.schedule", "@daily"));
  EXPECT_TRUE(ValidateInstanceOption("snapshots.expiry", "7d"));
  EXPECT_TRUE(ValidateInstanceOption("backups.schedule", "every 6h"));
  EXPECT_TRUE(ValidateInstanceOption("backups.store", "offsite-1"));
  EXPECT_TRUE(ValidateInstanceOption("backups.keep-last", "3"));
  EXPECT_FALSE(ValidateInstanceOption("backups.keep-last", "0"));
  EXPECT_FALSE(ValidateInstanceOption("backups.keep-last", "x"));
  EXPECT_FALSE(ValidateInstanceOption("backups.store", "a/b"));
  EXPECT_FALSE(ValidateInstanceOption("snapshots.expiry", "soon"));
  auto unknown = ValidateInstanceOption("snapshot.schedule", "@daily");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
  // The message lists every valid key so a typo is easy to fix.
  for (const auto& key : InstanceOptionKeys())
    EXPECT_NE(unknown.error().message().find(key), std::string::npos) << key;
  EXPECT_EQ(InstanceOptionKeys().size(), 5u);
}

TEST(InstanceOptions, PatchIsAllOrNothing) {
  std::map<std::string, std::string> opts = {{"snapshots.expiry", "7d"}};
  ASSERT_TRUE(ApplyOptionsPatch(
      {{"snapshots.schedule", "@daily"}, {"snapshots.expiry", ""}}, &opts));
  EXPECT_EQ(
      opts,
      (std::map<std::string, std::string>{{"snapshots.schedule", "@daily"}}));
  auto bad = ApplyOptionsPatch(
      {{"snapshots.schedule", ""}, {"backups.keep-last", "-1"}}, &opts);
  EXPECT_FALSE(bad);
  EXPECT_EQ(opts.size(), 1u);  // unchanged
  EXPECT_FALSE(ApplyOptionsPatch({{"nope", ""}}, &opts));
}

}  // namespace
}  // namespace vireo
