#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace vireo {

// Per-instance options (InstanceConfig::options): a flat key → string map
// whose keys and value syntax are checked here, so every service reading an
// option can trust it. All keys of issue 5 live in one registry so `vireo
// config` can list and check them without knowing who uses them.

// A schedule: "@hourly", "@daily", "@weekly" or "every <N><s|m|h|d>".
// Cron-less on purpose: an interval since the last run is all we need.
struct Schedule {
  std::chrono::seconds interval{0};
};
[[nodiscard]] Result<Schedule> ParseSchedule(std::string_view text);

// A duration "<N><s|m|h|d|w>" (e.g. "7d", "12h"); snapshots.expiry.
// Seconds exist for tests and demos; real retention uses hours or days.
[[nodiscard]] Result<std::chrono::seconds> ParseDuration(std::string_view text);

// Names of the registered keys, sorted.
std::vector<std::string> InstanceOptionKeys();

// Checks one key and value. Unknown key → kInvalidArgument listing the valid
// keys; bad value → kInvalidArgument naming the key and the expected syntax.
[[nodiscard]] Status ValidateInstanceOption(const std::string& key,
                                            const std::string& value);

// Applies a patch to `options`: a "" value removes the key. Validates all
// entries first and changes nothing on error.
[[nodiscard]] Status ApplyOptionsPatch(
    const std::map<std::string, std::string>& patch,
    std::map<std::string, std::string>* options);

}  // namespace vireo
