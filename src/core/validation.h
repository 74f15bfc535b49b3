#pragma once

#include <string_view>

#include "common/error.h"
#include "core/instance_service.h"

namespace vireo {

// Limits that keep absurd requests out; also documented in docs/api.md.
inline constexpr int kMaxCpus = 256;
inline constexpr uint64_t kMinMemory = 16ull << 20;
inline constexpr uint64_t kMaxMemory = 4ull << 40;
inline constexpr uint64_t kMinDiskSize = 1ull << 20;
inline constexpr uint64_t kMaxDiskSize = 64ull << 40;
inline constexpr size_t kMaxDisks = 16;
inline constexpr int kMaxNics = 8;
inline constexpr size_t kMaxCmdline = 4096;

// 1-63 characters of [A-Za-z0-9-], starting with a letter, not ending in '-'
// (a DNS label, so it can become a hostname and a file name safely).
Status ValidateInstanceName(std::string_view name);
// Everything about a create request that can be checked without side effects,
// including that kernel/initrd/source files exist and are regular files.
Status ValidateCreateRequest(const CreateRequest& request);

}  // namespace vireo
