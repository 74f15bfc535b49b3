#include "backup/prune_policy.h"

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>
#include <set>

namespace vireo::backup {

namespace {

enum class Mark { kKeep, kRemove };

std::string Period(int64_t t, const char* fmt) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

void MarkSelections(
    std::map<std::string, Mark>& marks,
    const std::vector<PruneCandidate>& newest_first, int keep,
    const std::function<std::string(const PruneCandidate&)>& period_of) {
  if (keep <= 0) return;
  std::set<std::string> already_included;
  for (const auto& b : newest_first) {
    auto it = marks.find(b.id);
    if (it != marks.end() && it->second == Mark::kKeep)
      already_included.insert(period_of(b));
  }
  std::set<std::string> included;
  for (const auto& b : newest_first) {
    if (marks.count(b.id) != 0) continue;
    std::string period = period_of(b);
    if (already_included.count(period) != 0) continue;
    if (included.count(period) == 0) {
      if (static_cast<int>(included.size()) >= keep) break;
      included.insert(period);
      marks[b.id] = Mark::kKeep;
    } else {
      marks[b.id] = Mark::kRemove;
    }
  }
}

}  // namespace

PruneReport SelectForPrune(std::vector<PruneCandidate> backups,
                           const PrunePolicy& policy) {
  // Input is oldest first (as List() returns, which orders backups of the
  // same second by commit time); newest first is its reverse, kept stable
  // for equal timestamps.
  std::reverse(backups.begin(), backups.end());
  std::stable_sort(backups.begin(), backups.end(),
                   [](const PruneCandidate& a, const PruneCandidate& b) {
                     return a.created_at > b.created_at;
                   });
  PruneReport report;
  bool any_rule = policy.keep_last > 0 || policy.keep_daily > 0 ||
                  policy.keep_weekly > 0 || policy.keep_monthly > 0;
  if (!any_rule) {
    for (const auto& b : backups) report.kept.push_back(b.id);
    return report;
  }
  std::map<std::string, Mark> marks;
  // keep-last: every backup is its own period.
  MarkSelections(marks, backups, policy.keep_last,
                 [](const PruneCandidate& b) { return b.id; });
  MarkSelections(
      marks, backups, policy.keep_daily,
      [](const PruneCandidate& b) { return Period(b.created_at, "%Y-%m-%d"); });
  MarkSelections(
      marks, backups, policy.keep_weekly,
      [](const PruneCandidate& b) { return Period(b.created_at, "%G-W%V"); });
  MarkSelections(
      marks, backups, policy.keep_monthly,
      [](const PruneCandidate& b) { return Period(b.created_at, "%Y-%m"); });
  for (const auto& b : backups) {
    auto it = marks.find(b.id);
    if (it != marks.end() && it->second == Mark::kKeep)
      report.kept.push_back(b.id);
    else
      report.removed.push_back(b.id);
  }
  return report;
}

}  // namespace vireo::backup
