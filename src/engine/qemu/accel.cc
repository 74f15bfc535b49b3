#include "engine/qemu/accel.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace vireo {
namespace {

// Returns "vmx"/"svm" if any "flags" line of cpuinfo lists it, "" if none,
// or nullopt-like error text through `error` when the file is unreadable.
std::string FindVirtFlag(const std::string& cpuinfo_path, std::string* error) {
  std::ifstream in(cpuinfo_path);
  if (!in) {
    *error = "cannot read " + cpuinfo_path;
    return "";
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::istringstream words(line.substr(colon + 1));
    std::string word;
    while (words >> word) {
      if (word == "vmx" || word == "svm") return word;
    }
  }
  return "";
}

}  // namespace

Result<AccelChoice> ChooseAccelerator(std::string_view override_accel,
                                      const std::string& cpuinfo_path,
                                      const std::string& kvm_dev) {
  if (override_accel == "tcg")
    return AccelChoice{"tcg", "TCG forced by configuration"};
  if (!override_accel.empty() && override_accel != "kvm") {
    return Err(ErrorCode::kInvalidArgument, "unknown accelerator '" +
                                                std::string(override_accel) +
                                                "' (expected kvm or tcg)");
  }
  std::string why_not;
  std::string read_error;
  std::string flag = FindVirtFlag(cpuinfo_path, &read_error);
  if (!read_error.empty()) {
    why_not = read_error;
  } else if (flag.empty()) {
    why_not = "no vmx/svm in CPU flags (PVM or nested-less host)";
  } else {
    int fd = ::open(kvm_dev.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      why_not = kvm_dev + " not usable: " + std::strerror(errno);
    } else {
      ::close(fd);
      return AccelChoice{"kvm",
                         "CPU has " + flag + " and " + kvm_dev + " is usable"};
    }
  }
  if (override_accel == "kvm") {
    return Err(ErrorCode::kInvalidArgument,
               "KVM requested but unavailable: " + why_not);
  }
  return AccelChoice{"tcg", why_not + ": using TCG"};
}

}  // namespace vireo
