#include "engine/qemu/runtime_files.h"

#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vireo {

namespace fs = std::filesystem;

Status ValidateInstanceId(const std::string& id) {
  if (id.empty() || id.size() > 64) {
    return Err(ErrorCode::kInvalidArgument, "bad instance id '" + id + "'");
  }
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return Err(ErrorCode::kInvalidArgument, "bad instance id '" + id + "'");
    }
  }
  return Ok();
}

Status CheckSocketPath(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Err(ErrorCode::kInvalidArgument,
               "unix socket path is " + std::to_string(path.size()) +
                   " bytes, over the limit of " +
                   std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                   "; use a shorter run directory: " + path);
  }
  return Ok();
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return ErrnoErr("create directory " + path, ec.value());
  return Ok();
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

std::string ReadTail(const std::string& path, uint64_t offset,
                     size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  uint64_t size = FileSize(path);
  if (size > offset + max_bytes) offset = size - max_bytes;
  in.seekg(static_cast<std::streamoff>(offset));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.pop_back();
  size_t start = 0;
  while (start < text.size() &&
         std::isspace(static_cast<unsigned char>(text[start])))
    ++start;
  return text.substr(start);
}

Status AppendLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
  if (!out) return ErrnoErr("write " + path);
  return Ok();
}

void RemoveRuntimeFiles(const VmPaths& paths) {
  for (const std::string* p :
       {&paths.qmp_socket, &paths.serial_socket, &paths.vnc_socket,
        &paths.guest_agent_socket, &paths.pid_file}) {
    ::unlink(p->c_str());
  }
}

Result<pid_t> ReadPidFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoErr("open " + path);
  long pid = 0;
  if (!(in >> pid) || pid <= 1) {
    return Err(ErrorCode::kInvalidArgument, "bad pid file " + path);
  }
  return static_cast<pid_t>(pid);
}

bool ProcessArgsContain(pid_t pid, std::string_view needle) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline",
                   std::ios::binary);
  if (!in) return false;
  std::string arg;
  while (std::getline(in, arg, '\0')) {
    if (arg.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace vireo
