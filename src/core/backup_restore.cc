// Restore: every disk of a backup is written to a sparse raw file (all-zero
// chunks are holes), then an instance is created from the backed-up config
// with those files as disk sources (the create path converts them into
// volumes of its pool), so a restored VM is an ordinary instance.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

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

// Writes every chunk of `reader` into `fd` at its offset (zero chunks stay
// holes). Chunks are read, decompressed and re-hashed on several threads:
// that CPU work, not the writes, bounds a restore. `progress` gets bytes
// done (serialized).
Status WriteDisk(backup::DiskReader* reader, int fd, const std::string& file,
                 const std::string& disk,
                 const std::function<void(uint64_t)>& progress) {
  constexpr int kThreads = 3;
  const uint64_t cs = reader->chunk_size();
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<Error> first_error;
  uint64_t done = 0;
  auto fail = [&](Error e) {
    std::lock_guard lock(mu);
    if (!first_error) first_error = std::move(e);
    failed = true;
  };
  auto worker = [&] {
    std::vector<uint8_t> buf;
    while (!failed) {
      uint64_t i = next++;
      if (i >= reader->chunk_count()) return;
      auto got = reader->ReadChunk(i, &buf);
      if (!got) {
        Error e = got.error();
        e.WithContext("restore disk '" + disk + "' chunk " + std::to_string(i));
        return fail(std::move(e));
      }
      uint64_t off = i * cs;
      size_t pos = 0;
      while (*got && pos < buf.size()) {
        ssize_t n = ::pwrite(fd, buf.data() + pos, buf.size() - pos,
                             static_cast<off_t>(off + pos));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(ErrnoErr("write " + file).value());
        pos += static_cast<size_t>(n);
      }
      std::lock_guard lock(mu);
      done += std::min(cs, reader->virtual_size() - off);
      progress(done);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (first_error) return tl::unexpected(*first_error);
  return Ok();
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
  for (const auto& d : info.disks) {
    ASSIGN_OR_RETURN(auto reader, repo->OpenDisk(info.id, d.name));
    std::string file =
        scratch.path + "/" + std::to_string(files.size()) + ".raw";
    UniqueFd fd(
        ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return ErrnoErr("create " + file);
    if (::ftruncate(fd.get(), static_cast<off_t>(reader->virtual_size())) != 0)
      return ErrnoErr("size " + file);
    uint64_t before = done;
    TRY(WriteDisk(reader.get(), fd.get(), file, d.name, [&](uint64_t n) {
      done = before + n;
      if (!op_id.empty())
        ops_->SetProgress(op_id, "restoring disk " + d.name, done, total);
    }));
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
