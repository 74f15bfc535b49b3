#pragma once

// Backup selection for pruning, separate from the repository so it can be
// tested on synthetic dates.

#include <cstdint>
#include <string>
#include <vector>

#include "backup/repository.h"

namespace vireo::backup {

struct PruneCandidate {
  std::string id;
  int64_t created_at = 0;  // unix seconds (UTC)
};

// Splits the backups of ONE instance (oldest first, as Repository::List
// returns them) into kept and removed ids, following
// Proxmox Backup Server's mark_selections: rules run in the order last,
// daily, weekly, monthly over the backups newest first; a backup already
// kept or removed by an earlier rule is skipped; within a rule, the first
// (newest) backup of a period not yet kept is kept while fewer than N
// periods are; later backups of a period already kept are removed; periods
// already holding a backup kept by an earlier rule do not count. The
// policy's instance and dry_run are ignored here.
PruneReport SelectForPrune(std::vector<PruneCandidate> backups,
                           const PrunePolicy& policy);

}  // namespace vireo::backup
