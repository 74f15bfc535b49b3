// Prune selection on synthetic dates (PBS semantics).

#include "backup/prune_policy.h"

#include <gtest/gtest.h>

#include <ctime>

namespace vireo::backup {
namespace {

int64_t At(int y, int mon, int d, int h = 12) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  return timegm(&tm);
}

std::vector<PruneCandidate> Daily(int days, int per_day = 1) {
  // One backup per day (or several) from 2024-01-01 on, ids sortable.
  std::vector<PruneCandidate> out;
  for (int d = 0; d < days; ++d)
    for (int k = 0; k < per_day; ++k) {
      int64_t t = At(2024, 1, 1) + d * 86400 + k * 3600;
      out.push_back({"b" + std::to_string(t), t});
    }
  return out;
}

std::string Id(int y, int mon, int d, int h = 12) {
  return "b" + std::to_string(At(y, mon, d, h));
}

TEST(PrunePolicy, NoRulesKeepsEverything) {
  auto r = SelectForPrune(Daily(5), PrunePolicy{});
  EXPECT_EQ(r.kept.size(), 5u);
  EXPECT_TRUE(r.removed.empty());
}

TEST(PrunePolicy, KeepLast) {
  PrunePolicy p;
  p.keep_last = 3;
  auto r = SelectForPrune(Daily(5), p);
  EXPECT_EQ(r.kept, (std::vector<std::string>{Id(2024, 1, 5), Id(2024, 1, 4),
                                              Id(2024, 1, 3)}));
  EXPECT_EQ(r.removed.size(), 2u);
}

TEST(PrunePolicy, KeepDailyTakesNewestOfEachDay) {
  PrunePolicy p;
  p.keep_daily = 2;
  // Three backups a day at 12:00, 13:00, 14:00.
  auto r = SelectForPrune(Daily(3, 3), p);
  EXPECT_EQ(r.kept,
            (std::vector<std::string>{Id(2024, 1, 3, 14), Id(2024, 1, 2, 14)}));
  EXPECT_EQ(r.removed.size(), 7u);
}

TEST(PrunePolicy, KeepLastThenDailySkipsDaysAlreadyKept) {
  PrunePolicy p;
  p.keep_last = 2;
  p.keep_daily = 2;
  auto r = SelectForPrune(Daily(3, 3), p);
  // keep-last keeps 3rd 14:00 and 13:00; day 3 is covered, and 3rd 12:00 is
  // in a covered day so daily skips it; daily then keeps the 2nd and 1st.
  EXPECT_EQ(r.kept,
            (std::vector<std::string>{Id(2024, 1, 3, 14), Id(2024, 1, 3, 13),
                                      Id(2024, 1, 2, 14), Id(2024, 1, 1, 14)}));
}

TEST(PrunePolicy, WeeklyUsesIsoWeeksAndMonthlyMonths) {
  // 2024-01-01 is a Monday: days 1..7 are ISO week 1, 8..14 week 2 ...
  PrunePolicy p;
  p.keep_weekly = 2;
  auto r = SelectForPrune(Daily(21), p);
  EXPECT_EQ(r.kept,
            (std::vector<std::string>{Id(2024, 1, 21), Id(2024, 1, 14)}));

  std::vector<PruneCandidate> months;
  for (int m = 1; m <= 6; ++m)
    for (int d : {3, 20}) months.push_back({Id(2024, m, d), At(2024, m, d)});
  PrunePolicy monthly;
  monthly.keep_monthly = 3;
  auto rm = SelectForPrune(months, monthly);
  EXPECT_EQ(rm.kept, (std::vector<std::string>{Id(2024, 6, 20), Id(2024, 5, 20),
                                               Id(2024, 4, 20)}));
  EXPECT_EQ(rm.removed.size(), 9u);
}

TEST(PrunePolicy, CombinedPolicyOnAYear) {
  // Daily backups for all of 2024 (366 days).
  auto all = Daily(366);
  PrunePolicy p;
  p.keep_last = 1;
  p.keep_daily = 7;
  p.keep_weekly = 4;
  p.keep_monthly = 6;
  auto r = SelectForPrune(all, p);
  // 1 last (Dec 31) + 7 daily (Dec 30..24) + 4 weekly (ISO weeks before the
  // one of Dec 24: Sundays Dec 22, 15, 8, 1) + 6 monthly (Nov..Jun ends).
  EXPECT_EQ(r.kept.size(), 1u + 7u + 4u + 6u);
  EXPECT_EQ(r.kept.size() + r.removed.size(), all.size());
  EXPECT_EQ(r.kept.front(), Id(2024, 12, 31));
  EXPECT_NE(std::find(r.kept.begin(), r.kept.end(), Id(2024, 12, 22)),
            r.kept.end());
  EXPECT_NE(std::find(r.kept.begin(), r.kept.end(), Id(2024, 6, 30)),
            r.kept.end());
  EXPECT_EQ(std::find(r.kept.begin(), r.kept.end(), Id(2024, 5, 31)),
            r.kept.end());
}

TEST(PrunePolicy, SameSecondBackupsFollowInputOrder) {
  // Ids sort against commit order; the input order (oldest first) decides.
  std::vector<PruneCandidate> same = {{"z-first", 100}, {"a-second", 100}};
  PrunePolicy p;
  p.keep_last = 1;
  auto r = SelectForPrune(same, p);
  EXPECT_EQ(r.kept, std::vector<std::string>{"a-second"});
  EXPECT_EQ(r.removed, std::vector<std::string>{"z-first"});
}

}  // namespace
}  // namespace vireo::backup
