#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace vireo {

struct AccelChoice {
  std::string accel;   // "kvm" or "tcg"
  std::string reason;  // why, in words an operator can read
};

// Picks the QEMU accelerator. KVM is used only when the CPU flags show
// hardware virtualization (vmx/svm) and the KVM device opens read-write:
// a PVM host exposes /dev/kvm without vmx/svm, and guests hang there.
// override_accel: "" (auto), "kvm" (fails if KVM is unusable) or "tcg".
Result<AccelChoice> ChooseAccelerator(
    std::string_view override_accel,
    const std::string& cpuinfo_path = "/proc/cpuinfo",
    const std::string& kvm_dev = "/dev/kvm");

}  // namespace vireo
