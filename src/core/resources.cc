#include "core/resources.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/units.h"

namespace vireo {

bool HoldsResources(InstanceState state) {
  return state == InstanceState::kRunning || state == InstanceState::kPaused ||
         state == InstanceState::kStarting || state == InstanceState::kStopping;
}

HostInfo ProbeHost() {
  HostInfo info;
  info.cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  info.memory_bytes = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                      static_cast<uint64_t>(::sysconf(_SC_PAGE_SIZE));
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) info.cpu_model = line.substr(colon + 2);
      break;
    }
  }
  return info;
}

namespace {
uint64_t MemoryLimit(const HostInfo& host, const OvercommitPolicy& p) {
  return static_cast<uint64_t>(static_cast<double>(host.memory_bytes) *
                               p.memory_ratio);
}
int CpuLimit(const HostInfo& host, const OvercommitPolicy& p) {
  return static_cast<int>(static_cast<double>(host.cpus) * p.cpu_ratio);
}
}  // namespace

Status ResourceTracker::CheckFits(const InstanceConfig& config) const {
  if (config.cpus > host_.cpus)
    return Err(ErrorCode::kResourceExhausted,
               "instance '" + config.name + "' asks for " +
                   std::to_string(config.cpus) + " vCPUs but the host has " +
                   std::to_string(host_.cpus) + " CPUs");
  uint64_t limit = MemoryLimit(host_, policy_);
  if (config.memory_bytes > limit)
    return Err(ErrorCode::kResourceExhausted,
               "instance '" + config.name + "' asks for " +
                   FormatSize(config.memory_bytes) +
                   " of memory but the host limit is " + FormatSize(limit) +
                   " (" + FormatSize(host_.memory_bytes) + " x overcommit " +
                   std::to_string(policy_.memory_ratio) + ")");
  return Ok();
}

Status ResourceTracker::CheckCanStart(const InstanceConfig& candidate,
                                      const std::vector<Instance>& all) const {
  TRY(CheckFits(candidate));
  uint64_t mem = candidate.memory_bytes;
  int cpus = candidate.cpus;
  for (const auto& i : all) {
    if (i.name() == candidate.name || !HoldsResources(i.status.state)) continue;
    mem += i.config.memory_bytes;
    cpus += i.config.cpus;
  }
  uint64_t mem_limit = MemoryLimit(host_, policy_);
  if (mem > mem_limit)
    return Err(ErrorCode::kResourceExhausted,
               "starting '" + candidate.name + "' would allocate " +
                   FormatSize(mem) + " of memory, over the host limit of " +
                   FormatSize(mem_limit));
  int cpu_limit = CpuLimit(host_, policy_);
  if (cpus > cpu_limit)
    return Err(ErrorCode::kResourceExhausted,
               "starting '" + candidate.name + "' would allocate " +
                   std::to_string(cpus) + " vCPUs, over the host limit of " +
                   std::to_string(cpu_limit));
  return Ok();
}

Json ResourceTracker::Describe(const std::vector<Instance>& all) const {
  uint64_t mem = 0;
  int cpus = 0, active = 0;
  for (const auto& i : all) {
    if (!HoldsResources(i.status.state)) continue;
    mem += i.config.memory_bytes;
    cpus += i.config.cpus;
    ++active;
  }
  return {{"cpu",
           {{"total", host_.cpus},
            {"model", host_.cpu_model},
            {"allocated", cpus},
            {"limit", CpuLimit(host_, policy_)},
            {"overcommit_ratio", policy_.cpu_ratio}}},
          {"memory",
           {{"total", host_.memory_bytes},
            {"allocated", mem},
            {"limit", MemoryLimit(host_, policy_)},
            {"overcommit_ratio", policy_.memory_ratio}}},
          {"instances", {{"total", all.size()}, {"active", active}}}};
}

}  // namespace vireo
