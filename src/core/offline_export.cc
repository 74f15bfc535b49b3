// Exports of a stopped VM's disks: one read-only qemu-nbd per disk. Bitmaps
// are handled with qemu-img (nothing writes to the disks meanwhile: the
// backup holds the instance lock, so the VM cannot start).

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/log.h"
#include "common/process.h"
#include "core/backup_export.h"

namespace vireo {

namespace {

namespace fs = std::filesystem;

struct BitmapState {
  bool exists = false;
  bool enabled = false;
  bool in_use = false;
};

Result<std::vector<std::pair<std::string, BitmapState>>> ListBitmaps(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::string out,
                   RunCommandOk({"qemu-img", "info", "--output=json", path}));
  Json info = Json::parse(out, nullptr, false);
  std::vector<std::pair<std::string, BitmapState>> list;
  if (!info.is_object()) return list;
  Json bitmaps = info.value("format-specific", Json::object())
                     .value("data", Json::object())
                     .value("bitmaps", Json::array());
  for (const Json& b : bitmaps) {
    BitmapState s;
    s.exists = true;
    for (const Json& f : b.value("flags", Json::array())) {
      if (f == "auto") s.enabled = true;
      if (f == "in-use") s.in_use = true;
    }
    list.emplace_back(b.value("name", ""), s);
  }
  return list;
}

class OfflineExport : public DiskExport {
 public:
  explicit OfflineExport(ExportOptions options)
      : options_(std::move(options)) {}
  ~OfflineExport() override {
    if (!finished_) Finish(false);
  }
  Status Start(const std::vector<ExportRequest>& reqs);
  const std::vector<ExportedDisk>& disks() const override { return out_; }
  void Finish(bool committed) override;

 private:
  void Stop();
  ExportOptions options_;
  std::vector<ExportRequest> reqs_;
  std::vector<ExportedDisk> out_;
  std::vector<std::unique_ptr<Process>> servers_;
  bool finished_ = false;
};

Status OfflineExport::Start(const std::vector<ExportRequest>& reqs) {
  reqs_ = reqs;
  std::error_code ec;
  fs::create_directories(options_.work_dir, ec);
  if (ec)
    return Err(ErrorCode::kIo,
               "create " + options_.work_dir + ": " + ec.message());
  for (size_t i = 0; i < reqs.size(); ++i) {
    const ExportRequest& r = reqs[i];
    ExportedDisk e;
    e.name = r.name;
    e.source.socket = options_.work_dir + "/nbd" + std::to_string(i) + ".sock";
    e.source.export_name = r.name;
    std::string reason = r.trusted_bitmap.empty()
                             ? "no earlier backup of this disk in the store"
                             : "bitmap " + r.trusted_bitmap + " is missing";
    bool trusted_ok = false;
    if (r.format == "qcow2") {
      ASSIGN_OR_RETURN(auto bitmaps, ListBitmaps(r.path));
      for (const auto& [name, s] : bitmaps) {
        if (name.rfind(options_.bitmap_prefix, 0) != 0) continue;
        if (name == r.trusted_bitmap) {
          if (s.in_use)
            reason = "bitmap is inconsistent (QEMU did not close it cleanly)";
          else if (!s.enabled)
            reason = "bitmap stopped recording (interrupted backup)";
          else
            trusted_ok = true;
          continue;
        }
        auto rm = RunCommandOk({"qemu-img", "bitmap", "--remove", r.path, name});
        if (!rm)
          LOG_WARN("remove stale bitmap {} of {}: {}", name, r.path,
                   rm.error().ToString());
      }
    } else {
      reason = "raw disk: no persistent dirty bitmap";
    }
    if (trusted_ok)
      e.source.bitmap = r.trusted_bitmap;
    else
      e.full_reason = reason;
    ::unlink(e.source.socket.c_str());
    SpawnOptions so;
    so.argv = {"qemu-nbd", "--read-only", "--persistent", "--shared=8",
               "--format=" + r.format, "--socket=" + e.source.socket,
               "--export-name=" + r.name};
    if (trusted_ok) so.argv.push_back("--bitmap=" + r.trusted_bitmap);
    so.argv.push_back(r.path);
    so.stderr_path = options_.work_dir + "/qemu-nbd" + std::to_string(i) + ".log";
    ASSIGN_OR_RETURN(auto proc, Process::Spawn(so));
    Process* p = proc.get();
    servers_.push_back(std::move(proc));
    // qemu-nbd creates its socket once the image is open.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    struct stat st;
    while (::stat(e.source.socket.c_str(), &st) != 0) {
      if (auto exit = p->WaitFor(std::chrono::milliseconds(20))) {
        std::string log;
        if (auto r2 = RunCommand({"cat", so.stderr_path})) log = r2->out;
        return Err(ErrorCode::kUnavailable,
                   "qemu-nbd for disk '" + r.name + "' exited (" +
                       exit->Describe() + "): " + log);
      }
      if (std::chrono::steady_clock::now() > deadline)
        return Err(ErrorCode::kTimeout,
                   "qemu-nbd for disk '" + r.name + "' did not start");
    }
    out_.push_back(std::move(e));
  }
  return Ok();
}

void OfflineExport::Stop() {
  for (auto& p : servers_) {
    p->Signal(SIGTERM);
    if (!p->WaitFor(std::chrono::seconds(5))) {
      p->Signal(SIGKILL);
      (void)p->WaitFor(std::chrono::seconds(5));
    }
  }
  servers_.clear();
  std::error_code ec;
  fs::remove_all(options_.work_dir, ec);
}

void OfflineExport::Finish(bool committed) {
  if (finished_) return;
  finished_ = true;
  Stop();
  if (!committed) return;
  for (const ExportRequest& r : reqs_) {
    if (r.format != "qcow2") continue;
    if (!r.trusted_bitmap.empty())
      (void)RunCommand({"qemu-img", "bitmap", "--remove", r.path,
                        r.trusted_bitmap});
    auto add =
        RunCommandOk({"qemu-img", "bitmap", "--add", r.path, options_.new_bitmap});
    if (!add)
      LOG_WARN("add bitmap {} to {}: {} (next backup reads everything)",
               options_.new_bitmap, r.path, add.error().ToString());
  }
}

}  // namespace

Result<std::unique_ptr<DiskExport>> StartOfflineExport(
    const std::vector<ExportRequest>& disks, const ExportOptions& options) {
  auto exp = std::make_unique<OfflineExport>(options);
  TRY(exp->Start(disks));
  return std::unique_ptr<DiskExport>(std::move(exp));
}

}  // namespace vireo
