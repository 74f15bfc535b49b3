#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/json.h"

namespace vireo {

enum class InstanceState {
  kStopped,
  kStarting,
  kRunning,
  kPaused,
  kStopping,
  kError
};
std::string_view ToString(InstanceState state);
Result<InstanceState> ParseInstanceState(std::string_view text);

enum class RestartPolicy { kNever, kOnFailure, kAlways };
std::string_view ToString(RestartPolicy policy);
Result<RestartPolicy> ParseRestartPolicy(std::string_view text);

struct DiskConfig {
  std::string name;         // "root", "disk1", ...: unique within the instance
  std::string path;         // absolute path of the volume file or device
  uint64_t size_bytes = 0;  // virtual size
  std::string source;       // image file it was created from, if any
  std::string format = "qcow2";  // "qcow2" or "raw" (block devices, ISOs)
  std::string media = "disk";    // "disk" or "cdrom"
  bool readonly = false;
  std::string image;   // image store name this disk is a linked clone of
  std::string pool;    // storage pool holding it; empty: the instance's own
  std::string volume;  // pool volume name when attached from a pool
  std::string bus;     // "virtio", "sata", "scsi"; empty: the OS profile's
};

struct NicConfig {
  std::string name;           // "eth0"
  std::string type = "user";  // "user" (slirp) or "network" (managed bridge)
  std::string mac;            // 52:54:00:xx:xx:xx
  std::string network;        // managed network name when type == "network"
  std::string ip;             // static DHCP reservation, if any
  std::string model;          // "virtio", "e1000e"; empty: the OS profile's
};

// What a user asked for. Paths are absolute and validated.
struct InstanceConfig {
  std::string name;
  int cpus = 1;
  uint64_t memory_bytes = 256ull << 20;
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::vector<DiskConfig> disks;
  std::vector<NicConfig> nics;
  RestartPolicy restart_policy = RestartPolicy::kNever;
  std::string firmware = "bios";  // "bios" (SeaBIOS) or "uefi" (OVMF)
  std::string os_type = "linux";  // "linux", "windows" or "other"
  std::string uefi_vars;          // per-VM OVMF variable store (uefi only)
  // Validated key → value settings (core/instance_options.h), e.g.
  // "snapshots.schedule": "@daily". Absent key: feature off / default.
  std::map<std::string, std::string> options;
};

// What the system observed. Only the instance service changes it.
struct InstanceStatus {
  InstanceState state = InstanceState::kStopped;
  int pid = 0;
  std::string last_error;       // why it is in kError, or why start failed
  int64_t started_at = 0;       // unix seconds, 0 when not running
  int restart_count = 0;        // automatic restarts by the restart policy
  bool stop_requested = false;  // a user asked it to stop (not a crash)
};

struct Instance {
  std::string id;          // 16 hex chars, stable; names runtime files
  int64_t created_at = 0;  // unix seconds
  InstanceConfig config;
  InstanceStatus status;

  const std::string& name() const { return config.name; }
};

// Serialization used by both the store and the API.
Json ToJson(const InstanceConfig& config);
Json ToJson(const InstanceStatus& status);
Json ToJson(const Instance& instance);
Result<InstanceConfig> InstanceConfigFromJson(const Json& j);
Result<InstanceStatus> InstanceStatusFromJson(const Json& j);
Result<Instance> InstanceFromJson(const Json& j);

}  // namespace vireo
