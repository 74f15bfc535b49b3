#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace vireo::cli {

// Lenient accessors: the CLI prints what the server sends and must not fail
// (or throw) on a missing field or an unexpected type.
std::string JStr(const Json& j, std::string_view key);
int64_t JInt(const Json& j, std::string_view key);
const Json& JObj(const Json& j, std::string_view key);  // null Json when absent

// Bytes from a number or a size string ("512M"); 0 when neither.
uint64_t JBytes(const Json& j, std::string_view key);
// "512MiB", or "23.4GiB" for sizes that are not a whole number of units.
std::string HumanSize(uint64_t bytes);
// Unix seconds -> "2024-05-01 12:00:00 UTC"; "-" for 0.
std::string FormatTime(int64_t unix_seconds);

// Left-aligned columns separated by two spaces.
class Table {
 public:
  explicit Table(std::vector<std::string> header) {
    rows_.push_back(std::move(header));
  }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "Label:" padded to a common width, then the value.
class Fields {
 public:
  void Add(std::string label, std::string value) {
    rows_.emplace_back(std::move(label), std::move(value));
  }
  std::string Render() const;

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

// Flattens nested objects into "a.b.c" -> value text, sizes made readable
// for keys that hold bytes ("memory", "*_bytes").
void FlattenInto(const Json& j, const std::string& prefix, Fields& out);

// Pretty JSON on stdout, for --json.
void PrintJson(const Json& j);

}  // namespace vireo::cli
