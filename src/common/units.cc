#include "common/units.h"

#include <cctype>

namespace vireo {

Result<uint64_t> ParseSize(std::string_view text) {
  constexpr uint64_t kMax = 1ull << 50;
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  if (s.empty()) return Err(ErrorCode::kInvalidArgument, "empty size");
  size_t i = 0;
  uint64_t value = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    value = value * 10 + static_cast<uint64_t>(s[i] - '0');
    if (value > kMax)
      return Err(ErrorCode::kInvalidArgument,
                 "size too large: " + std::string(text));
    ++i;
  }
  if (i == 0)
    return Err(ErrorCode::kInvalidArgument,
               "invalid size: " + std::string(text));
  std::string unit(s.substr(i));
  for (auto& c : unit)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    mult = 1ull << 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    mult = 1ull << 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    mult = 1ull << 30;
  else if (unit == "T" || unit == "TB" || unit == "TIB")
    mult = 1ull << 40;
  else
    return Err(ErrorCode::kInvalidArgument,
               "invalid size unit in: " + std::string(text));
  if (value > kMax / mult)
    return Err(ErrorCode::kInvalidArgument,
               "size too large: " + std::string(text));
  return value * mult;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B",   "KiB", "MiB",
                                           "GiB", "TiB", "PiB"};
  int u = 0;
  while (u < 5 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + kUnits[u];
}

}  // namespace vireo
