#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.h"
#include "core/vm_engine.h"

namespace vireo {

// Helpers for a VM's runtime directory (sockets, pidfile, logs).

// The id names the runtime directory: keep it a plain file name.
Status ValidateInstanceId(const std::string& id);
// A unix socket path must fit sockaddr_un.sun_path (107 bytes + NUL).
Status CheckSocketPath(const std::string& path);
Status MakeDirs(const std::string& path);
// Size of a file, 0 if it does not exist.
uint64_t FileSize(const std::string& path);
// The last max_bytes of what was appended to path after offset, trimmed.
std::string ReadTail(const std::string& path, uint64_t offset,
                     size_t max_bytes = 1500);
Status AppendLine(const std::string& path, const std::string& line);
// Removes the sockets and the pidfile; the logs are history and stay.
void RemoveRuntimeFiles(const VmPaths& paths);
Result<pid_t> ReadPidFile(const std::string& path);
// True if some argument of the live process `pid` contains `needle`; this
// tells our QEMU apart from an unrelated process that reused its pid.
bool ProcessArgsContain(pid_t pid, std::string_view needle);

}  // namespace vireo
