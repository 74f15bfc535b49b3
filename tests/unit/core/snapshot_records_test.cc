#include "core/snapshot_records.h"

#include <gtest/gtest.h>

#include <map>

#include "core/snapshot_scheduler.h"

namespace vireo {
namespace {

SnapshotRecord Rec(const std::string& name, const std::string& parent,
                   int64_t at) {
  SnapshotRecord r;
  r.instance_id = "0123456789abcdef";
  r.name = name;
  r.parent = parent;
  r.created_at = at;
  return r;
}

std::map<std::string, std::string> Parents(
    const std::vector<SnapshotRecord>& all) {
  std::map<std::string, std::string> out;
  for (const auto& r : all) out[r.name] = r.parent;
  return out;
}

// s1 ─┬─ s2 ── s4
//     └─ s3
TEST(SnapshotTree, DeleteInnerNodeReparentsChildrenToItsParent) {
  std::vector<SnapshotRecord> all = {Rec("s1", "", 1), Rec("s2", "s1", 2),
                                     Rec("s3", "s1", 3), Rec("s4", "s2", 4)};
  SnapshotRecord inner = all[1];
  auto changed = ReparentChildren(all, inner);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].name, "s4");
  EXPECT_EQ(changed[0].parent, "s1");
  EXPECT_EQ(Parents(all), (std::map<std::string, std::string>{
                              {"s1", ""}, {"s3", "s1"}, {"s4", "s1"}}));
}

TEST(SnapshotTree, DeleteRootMakesChildrenRoots) {
  std::vector<SnapshotRecord> all = {Rec("s1", "", 1), Rec("s2", "s1", 2),
                                     Rec("s3", "s1", 3)};
  SnapshotRecord root = all[0];
  auto changed = ReparentChildren(all, root);
  EXPECT_EQ(changed.size(), 2u);
  EXPECT_EQ(Parents(all),
            (std::map<std::string, std::string>{{"s2", ""}, {"s3", ""}}));
}

TEST(SnapshotTree, DeleteLeafChangesNothingElse) {
  std::vector<SnapshotRecord> all = {Rec("s1", "", 1), Rec("s2", "s1", 2)};
  SnapshotRecord leaf = all[1];
  EXPECT_TRUE(ReparentChildren(all, leaf).empty());
  EXPECT_EQ(Parents(all), (std::map<std::string, std::string>{{"s1", ""}}));
}

TEST(SnapshotTree, RecordJsonRoundTrip) {
  SnapshotRecord r = Rec("m1", "s1", 42);
  r.memory = true;
  r.disks = {{"disk0", 16ull << 20, 123456}, {"disk1", 1ull << 30, 0}};
  auto back = SnapshotRecordFromJson(ToJson(r));
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(ToJson(*back), ToJson(r));
  EXPECT_EQ(back->disks[0].vm_state_size, 123456u);
  EXPECT_FALSE(SnapshotRecordFromJson(Json{{"name", 3}}));
  EXPECT_EQ(SnapshotKey("abc", "s1"), "abc/s1");
}

TEST(SnapshotScheduler, AutoNamesAreUtcTimestamps) {
  EXPECT_EQ(SnapshotScheduler::AutoName(0), "auto-19700101T000000Z");
  EXPECT_EQ(SnapshotScheduler::AutoName(1796490000), "auto-20261205T170000Z");
}

}  // namespace
}  // namespace vireo
