// Restore: every disk of a backup is written to a sparse raw file (all-zero
// chunks are holes), then an instance is created from the backed-up config
// with those files as disk sources (the create path converts them into
// volumes of its pool), so a restored VM is an ordinary instance.

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "common/fd.h"
#include "common/log.h"
#include "common/random.h"
#include "core/backup_service.h"

namespace vireo {

namespace {

namespace fs = std::filesystem;

// Removes the scratch directory whatever happens.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

CreateRequest RequestFrom(const InstanceConfig& c, const std::string& name,
                          bool same_name) {
  CreateRequest r;
  r.name = name;
  r.cpus = c.cpus;
  r.memory_bytes = c.memory_bytes;
  r.kernel = c.kernel;
  r.initrd = c.initrd;
  r.cmdline = c.cmdline;
  r.restart_policy = c.restart_policy;
  r.firmware = c.firmware;
  r.os_type = c.os_type;
  int user_nics = 0;
  for (const NicConfig& n : c.nics) {
    if (n.type == "network") {
      // The original MAC and address only when the VM comes back as itself;
      // a copy next to the original would clash.
      r.networks.push_back(
          NicRequest{n.network, same_name ? n.mac : "", same_name ? n.ip : ""});
    } else {
      ++user_nics;
    }
  }
  r.nics = user_nics;
  return r;
}

}  // namespace

Result<Json> BackupService::DoRestore(std::shared_ptr<backup::Repository> repo,
                                      const backup::BackupInfo& info,
                                      const std::string& name) {
  const std::string op_id = OperationManager::CurrentId();
  ASSIGN_OR_RETURN(InstanceConfig config, InstanceConfigFromJson(info.config));
  ScratchDir scratch{options_.work_dir + "/restore-" + RandomHex(4)};
  std::error_code ec;
  fs::create_directories(scratch.path, ec);
  if (ec)
    return Err(ErrorCode::kIo, "create " + scratch.path + ": " + ec.message());

  uint64_t total = 0, done = 0;
  for (const auto& d : info.disks) total += d.virtual_size;
  std::map<std::string, std::string> files;  // disk name → raw file
  std::vector<uint8_t> buf;
  for (const auto& d : info.disks) {
    ASSIGN_OR_RETURN(auto reader, repo->OpenDisk(info.id, d.name));
    std::string file =
        scratch.path + "/" + std::to_string(files.size()) + ".raw";
    UniqueFd fd(
        ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return ErrnoErr("create " + file);
    if (::ftruncate(fd.get(), static_cast<off_t>(reader->virtual_size())) != 0)
      return ErrnoErr("size " + file);
    for (uint64_t i = 0; i < reader->chunk_count(); ++i) {
      auto got = reader->ReadChunk(i, &buf);
      if (!got) {
        Error e = got.error();
        e.WithContext("restore disk '" + d.name + "' chunk " +
                      std::to_string(i));
        return tl::unexpected(e);
      }
      uint64_t off = i * reader->chunk_size();
      if (*got) {
        size_t pos = 0;
        while (pos < buf.size()) {
          ssize_t n = ::pwrite(fd.get(), buf.data() + pos, buf.size() - pos,
                               static_cast<off_t>(off + pos));
          if (n < 0) {
            if (errno == EINTR) continue;
            return ErrnoErr("write " + file);
          }
          pos += static_cast<size_t>(n);
        }
      }
      done += std::min(reader->chunk_size(), reader->virtual_size() - off);
      if (!op_id.empty())
        ops_->SetProgress(op_id, "restoring disk " + d.name, done, total);
    }
    if (::fsync(fd.get()) != 0) return ErrnoErr("fsync " + file);
    files[d.name] = file;
  }

  CreateRequest req = RequestFrom(config, name, name == info.instance);
  for (const DiskConfig& d : config.disks) {
    if (d.media != "disk") continue;
    auto it = files.find(d.name);
    if (it == files.end())
      return Err(
          ErrorCode::kDataLoss,
          "backup " + info.id + " has no data for disk '" + d.name + "'");
    DiskRequest dr;
    dr.source = it->second;
    req.disks.push_back(dr);
  }
  if (!op_id.empty()) ops_->SetProgress(op_id, "creating instance", 0, 1);
  ASSIGN_OR_RETURN(Operation create, instances_->BeginCreate(req));
  ASSIGN_OR_RETURN(Operation finished,
                   ops_->Wait(create.id, std::chrono::hours(24)));
  if (finished.status != OperationStatus::kSuccess) {
    auto code = ErrorCode::kInternal;
    if (finished.error_code == "already_exists")
      code = ErrorCode::kAlreadyExists;
    return Err(code, "create instance '" + name + "': " + finished.error);
  }
  LOG_INFO("restored backup {} as instance '{}'", info.id, name);
  return Json{{"instance", name}, {"backup", info.id}};
}

}  // namespace vireo
