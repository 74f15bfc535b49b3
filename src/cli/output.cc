#include "cli/output.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "common/units.h"

namespace vireo::cli {

namespace {
const Json& Null() {
  static const Json kNull;
  return kNull;
}

bool IsBytesKey(std::string_view key) {
  return key == "memory" || key.ends_with("_bytes") ||
         key.ends_with("memory") || key == "size" || key.ends_with("_memory");
}
}  // namespace

const Json& JObj(const Json& j, std::string_view key) {
  if (!j.is_object()) return Null();
  auto it = j.find(key);
  return it == j.end() ? Null() : *it;
}

std::string JStr(const Json& j, std::string_view key) {
  const Json& v = JObj(j, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

int64_t JInt(const Json& j, std::string_view key) {
  const Json& v = JObj(j, key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number()) return static_cast<int64_t>(v.get<double>());
  return 0;
}

uint64_t JBytes(const Json& j, std::string_view key) {
  const Json& v = JObj(j, key);
  if (v.is_number_unsigned() || v.is_number_integer()) return v.get<uint64_t>();
  if (v.is_string()) {
    auto parsed = ParseSize(v.get<std::string>());
    if (parsed) return *parsed;
  }
  return 0;
}

std::string HumanSize(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + "B";
  std::string exact = FormatSize(bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (u < 4 && value >= 1024) {
    value /= 1024;
    ++u;
  }
  // FormatSize gives exact figures; prefer it unless it fell back to a
  // smaller unit than the magnitude warrants ("1537KiB").
  if (exact.ends_with(kUnits[u])) return exact;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%s", value, kUnits[u]);
  return buf;
}

std::string FormatTime(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Table::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string Fields::Render() const {
  size_t width = 0;
  for (const auto& [label, value] : rows_)
    width = std::max(width, label.size() + 1);
  std::string out;
  for (const auto& [label, value] : rows_) {
    out +=
        label + ":" + std::string(width - label.size() + 1, ' ') + value + "\n";
  }
  return out;
}

namespace {
void Flatten(const Json& j, const std::string& prefix, bool bytes,
             Fields& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      std::string path = prefix.empty() ? key : prefix + "." + key;
      // Integers under a memory-like key ("memory": {"total": N}) are bytes.
      bool child_bytes = bytes || IsBytesKey(key);
      if (value.is_object() && !value.empty()) {
        Flatten(value, path, child_bytes, out);
      } else if ((value.is_number_unsigned() || value.is_number_integer()) &&
                 child_bytes) {
        out.Add(path, HumanSize(value.get<uint64_t>()));
      } else if (value.is_string()) {
        out.Add(path, value.get<std::string>());
      } else {
        out.Add(path, value.dump());
      }
    }
    return;
  }
  out.Add(prefix.empty() ? "value" : prefix,
          j.is_string() ? j.get<std::string>() : j.dump());
}
}  // namespace

void FlattenInto(const Json& j, const std::string& prefix, Fields& out) {
  Flatten(j, prefix, false, out);
}

void PrintJson(const Json& j) {
  std::cout << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

}  // namespace vireo::cli
