#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/instance.h"

namespace vireo {

struct HostInfo {
  int cpus = 0;
  uint64_t memory_bytes = 0;
  std::string cpu_model;
};
HostInfo ProbeHost();

struct OvercommitPolicy {
  double cpu_ratio = 4.0;     // vCPUs allocated may reach ratio x host CPUs
  double memory_ratio = 1.0;  // RAM allocated may reach ratio x host RAM
};

// Decides whether instances fit on the host. Allocation counts the instances
// that hold resources now (running, paused, starting, stopping).
class ResourceTracker {
 public:
  ResourceTracker(HostInfo host, OvercommitPolicy policy)
      : host_(host), policy_(policy) {}

  // Refuses a config that could never run here (more vCPUs than host CPUs,
  // more memory than the memory limit).
  [[nodiscard]] Status CheckFits(const InstanceConfig& config) const;
  // Refuses starting `candidate` if, together with `active`, limits are
  // exceeded.
  [[nodiscard]] Status CheckCanStart(const InstanceConfig& candidate,
                                     const std::vector<Instance>& all) const;
  Json Describe(const std::vector<Instance>& all) const;
  const HostInfo& host() const { return host_; }

 private:
  HostInfo host_;
  OvercommitPolicy policy_;
};

bool HoldsResources(InstanceState state);

}  // namespace vireo
