#include "core/instance_options.h"

#include <charconv>
#include <functional>

namespace vireo {

namespace {

// Parses a positive decimal number filling the whole of `digits`.
bool ParsePositive(std::string_view digits, int64_t* out) {
  if (digits.empty()) return false;
  int64_t v = 0;
  auto [ptr, ec] =
      std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || v < 1)
    return false;
  *out = v;
  return true;
}

Status ValidateName(std::string_view value) {
  if (value.empty() || value.size() > 63)
    return Err(ErrorCode::kInvalidArgument, "must be 1 to 63 characters");
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok)
      return Err(ErrorCode::kInvalidArgument,
                 "may only contain letters, digits, '-', '_' and '.'");
  }
  return Ok();
}

Status ValidatePositiveInt(std::string_view value) {
  int64_t v = 0;
  if (!ParsePositive(value, &v) || v > 1000000)
    return Err(ErrorCode::kInvalidArgument,
               "must be an integer between 1 and 1000000");
  return Ok();
}

struct OptionSpec {
  const char* key;
  const char* syntax;  // shown in errors
  std::function<Status(std::string_view)> check;
};

const std::vector<OptionSpec>& Registry() {
  static const std::vector<OptionSpec> specs = {
      {"backups.keep-last", "an integer >= 1", ValidatePositiveInt},
      {"backups.schedule", "@hourly, @daily, @weekly or every <N><s|m|h|d>",
       [](std::string_view v) -> Status {
         TRY(ParseSchedule(v));
         return Ok();
       }},
      {"backups.store", "a backup store name", ValidateName},
      {"snapshots.expiry", "<N><s|m|h|d|w>, e.g. 7d or 12h",
       [](std::string_view v) -> Status {
         TRY(ParseDuration(v));
         return Ok();
       }},
      {"snapshots.schedule", "@hourly, @daily, @weekly or every <N><s|m|h|d>",
       [](std::string_view v) -> Status {
         TRY(ParseSchedule(v));
         return Ok();
       }},
  };
  return specs;
}

std::string KeyList() {
  std::string out;
  for (const auto& s : Registry()) {
    if (!out.empty()) out += ", ";
    out += s.key;
  }
  return out;
}

}  // namespace

Result<std::chrono::seconds> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return Err(ErrorCode::kInvalidArgument,
               "invalid duration '" + std::string(text) +
                   "' (expected <N><s|m|h|d|w>, e.g. 30m, 12h, 7d)");
  };
  if (text.size() < 2) return bad();
  int64_t n = 0;
  if (!ParsePositive(text.substr(0, text.size() - 1), &n)) return bad();
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      return bad();
  }
  // Ten years is far past any sensible retention and keeps us from overflow.
  if (n > 10 * 366 * 86400 / unit) return bad();
  return std::chrono::seconds(n * unit);
}

Result<Schedule> ParseSchedule(std::string_view text) {
  if (text == "@hourly") return Schedule{std::chrono::hours(1)};
  if (text == "@daily") return Schedule{std::chrono::hours(24)};
  if (text == "@weekly") return Schedule{std::chrono::hours(24 * 7)};
  constexpr std::string_view kEvery = "every ";
  if (text.substr(0, kEvery.size()) == kEvery && text.back() != 'w') {
    auto d = ParseDuration(text.substr(kEvery.size()));
    if (d) return Schedule{*d};
  }
  return Err(ErrorCode::kInvalidArgument,
             "invalid schedule '" + std::string(text) +
                 "' (expected @hourly, @daily, @weekly or every "
                 "<N><s|m|h|d>, e.g. every 30m)");
}

std::vector<std::string> InstanceOptionKeys() {
  std::vector<std::string> keys;
  for (const auto& s : Registry()) keys.emplace_back(s.key);
  return keys;
}

Status ValidateInstanceOption(const std::string& key,
                              const std::string& value) {
  for (const auto& s : Registry()) {
    if (key != s.key) continue;
    auto st = s.check(value);
    if (!st)
      return Err(ErrorCode::kInvalidArgument,
                 "option " + key + ": invalid value '" + value + "': " +
                     st.error().message() + " (expected " + s.syntax + ")");
    return Ok();
  }
  return Err(ErrorCode::kInvalidArgument,
             "unknown option '" + key + "' (valid keys: " + KeyList() + ")");
}

Status ApplyOptionsPatch(const std::map<std::string, std::string>& patch,
                         std::map<std::string, std::string>* options) {
  for (const auto& [k, v] : patch) {
    if (v.empty()) {
      // Unsetting an unknown key is still a typo worth reporting.
      bool known = false;
      for (const auto& s : Registry()) known = known || k == s.key;
      if (!known)
        return Err(
            ErrorCode::kInvalidArgument,
            "unknown option '" + k + "' (valid keys: " + KeyList() + ")");
      continue;
    }
    TRY(ValidateInstanceOption(k, v));
  }
  for (const auto& [k, v] : patch) {
    if (v.empty())
      options->erase(k);
    else
      (*options)[k] = v;
  }
  return Ok();
}

}  // namespace vireo
