// Live point-in-time exports through QMP "fleecing" (QEMU 7.2): the guest
// keeps writing to its disks; before a cluster is overwritten, the backup
// job (sync=none) copies the old data into a temporary qcow2 whose backing
// file is the disk, so reading the temporary node gives the disk as it was.

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "common/log.h"
#include "common/process.h"
#include "common/random.h"
#include "core/backup_export.h"
#include "core/guest_freeze.h"

namespace vireo {

namespace {

namespace fs = std::filesystem;

// Names of everything a backup adds to QEMU, so leftovers can be found.
constexpr const char* kNodePrefix = "vbf";    // fleecing nodes
constexpr const char* kJobPrefix = "vbj";     // backup jobs
constexpr const char* kExportPrefix = "vbe";  // NBD exports

bool Starts(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

void Chown(const std::string& path, const std::string& user) {
  if (user.empty()) return;
  struct passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) return;
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    LOG_WARN("chown {} to {}: {}", path, user, strerror(errno));
}

void Quiet(Result<Json> r, const std::string& what) {
  if (!r) LOG_WARN("backup cleanup: {}: {}", what, r.error().ToString());
}

void WaitJobsGone(VmEngine* engine, const std::string& vm,
                  const std::vector<std::string>& ids) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto jobs = engine->Qmp(vm, "query-jobs", Json::object());
    if (!jobs) return;
    bool any = false;
    for (const Json& j : *jobs) {
      std::string id = j.value("id", "");
      bool ours = ids.empty()
                      ? Starts(id, kJobPrefix)
                      : std::find(ids.begin(), ids.end(), id) != ids.end();
      if (!ours) continue;
      any = true;
      std::string st = j.value("status", "");
      if (st == "concluded" || st == "aborting" || st == "null")
        (void)engine->Qmp(vm, "job-dismiss", {{"id", id}});
    }
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  LOG_WARN("{}: backup jobs did not finish within 30 s", vm);
}

struct LiveDisk {
  ExportRequest req;
  std::string node;  // the disk's format node
  uint64_t size = 0;
  std::string tmp_node;  // fleecing node
  std::string tmp_file;
  std::string job;
  std::string export_id;
  bool bitmap_disabled = false;  // trusted bitmap frozen in the transaction
  bool new_bitmap = false;       // new bitmap added
};

class LiveExport : public DiskExport {
 public:
  LiveExport(VmEngine* engine, std::string vm, ExportOptions options)
      : engine_(engine), vm_(std::move(vm)), options_(std::move(options)) {}
  ~LiveExport() override {
    if (!finished_) Finish(false);
  }

  Status Start(const std::vector<ExportRequest>& reqs);
  const std::vector<ExportedDisk>& disks() const override { return out_; }
  std::string consistency() const override { return consistency_; }
  void Finish(bool committed) override;

 private:
  Status Inspect(const std::vector<ExportRequest>& reqs);
  void Stop();

  VmEngine* engine_;
  std::string vm_;
  ExportOptions options_;
  std::string tag_ = RandomHex(3);
  std::vector<LiveDisk> disks_;
  std::vector<ExportedDisk> out_;
  bool server_started_ = false;
  bool stopped_ = false;
  bool finished_ = false;
  std::string consistency_;
};

Status LiveExport::Inspect(const std::vector<ExportRequest>& reqs) {
  ASSIGN_OR_RETURN(Json blocks, engine_->Qmp(vm_, "query-block", {}));
  for (size_t i = 0; i < reqs.size(); ++i) {
    const ExportRequest& r = reqs[i];
    std::optional<Json> inserted;
    for (const Json& b : blocks) {
      Json ins = b.value("inserted", Json::object());
      if (ins.is_object() && ins.value("file", "") == r.path) inserted = ins;
    }
    if (!inserted)
      return Err(ErrorCode::kFailedPrecondition,
                 "disk '" + r.name + "' (" + r.path +
                     ") is not attached to the running VM");
    LiveDisk d;
    d.req = r;
    d.node = inserted->value("node-name", "");
    d.size =
        inserted->value("image", Json::object()).value("virtual-size", 0ull);
    ExportedDisk e;
    e.name = r.name;
    // Bitmaps with our prefix other than the trusted one are leftovers.
    bool trusted_ok = false;
    std::string reason = r.trusted_bitmap.empty() ? "no earlier backup of "
                                                    "this disk in the store"
                                                  : "";
    for (const Json& bm : inserted->value("dirty-bitmaps", Json::array())) {
      std::string name = bm.value("name", "");
      if (!Starts(name, options_.bitmap_prefix.c_str())) continue;
      if (name == r.trusted_bitmap) {
        if (bm.value("inconsistent", false))
          reason = "bitmap is inconsistent (QEMU did not close it cleanly)";
        else if (!bm.value("recording", false))
          reason = "bitmap stopped recording (interrupted backup)";
        else if (bm.value("busy", false))
          reason = "bitmap is busy";
        else
          trusted_ok = true;
        continue;
      }
      Quiet(engine_->Qmp(vm_, "block-dirty-bitmap-remove",
                         {{"node", d.node}, {"name", name}}),
            "remove stale bitmap " + name);
    }
    if (!r.trusted_bitmap.empty() && !trusted_ok && reason.empty())
      reason = "bitmap " + r.trusted_bitmap + " is missing";
    if (r.format != "qcow2") {
      trusted_ok = false;
      reason = "raw disk: no persistent dirty bitmap";
    }
    if (trusted_ok) {
      e.source.bitmap = r.trusted_bitmap;
    } else {
      e.full_reason = reason;
    }
    disks_.push_back(std::move(d));
    out_.push_back(std::move(e));
  }
  return Ok();
}

Status LiveExport::Start(const std::vector<ExportRequest>& reqs) {
  TRY(Inspect(reqs));
  std::error_code ec;
  fs::create_directories(options_.work_dir, ec);
  if (ec)
    return Err(ErrorCode::kIo,
               "create " + options_.work_dir + ": " + ec.message());
  Chown(options_.work_dir, options_.qemu_user);
  std::string socket = options_.work_dir + "/nbd.sock";
  Json actions = Json::array();
  for (size_t i = 0; i < disks_.size(); ++i) {
    LiveDisk& d = disks_[i];
    std::string n = std::to_string(i);
    d.tmp_node = kNodePrefix + tag_ + n;
    d.job = kJobPrefix + tag_ + n;
    d.tmp_file = options_.work_dir + "/fleece" + n + ".qcow2";
    TRY_CTX(RunCommandOk({"qemu-img", "create", "-q", "-f", "qcow2", d.tmp_file,
                          std::to_string(d.size)}),
            "create fleecing image");
    Chown(d.tmp_file, options_.qemu_user);
    TRY_CTX(
        engine_->Qmp(vm_, "blockdev-add",
                     {{"driver", "qcow2"},
                      {"node-name", d.tmp_node},
                      {"file", {{"driver", "file"}, {"filename", d.tmp_file}}},
                      {"backing", d.node}}),
        "add fleecing node for " + d.req.name);
    if (!out_[i].source.bitmap.empty()) {
      actions.push_back(
          {{"type", "block-dirty-bitmap-disable"},
           {"data", {{"node", d.node}, {"name", out_[i].source.bitmap}}}});
      d.bitmap_disabled = true;
    }
    if (d.req.format == "qcow2") {
      actions.push_back({{"type", "block-dirty-bitmap-add"},
                         {"data",
                          {{"node", d.node},
                           {"name", options_.new_bitmap},
                           {"persistent", true}}}});
      d.new_bitmap = true;
    }
    actions.push_back({{"type", "blockdev-backup"},
                       {"data",
                        {{"device", d.node},
                         {"target", d.tmp_node},
                         {"sync", "none"},
                         {"job-id", d.job}}}});
  }
  // One transaction: every disk's point in time and bitmap handover happen
  // at the same instant, so the backup is consistent across disks and no
  // write falls between the old bitmap and the new one. The guest is frozen
  // for that instant only (everything slow was prepared above); the guard
  // thaws on every path.
  auto freeze = GuestFreeze::Begin(engine_, vm_);
  auto tx = engine_->Qmp(vm_, "transaction", {{"actions", actions}});
  freeze->Thaw();
  consistency_ = freeze->describe();
  if (!tx) {
    for (auto& d : disks_) d.bitmap_disabled = d.new_bitmap = false;
    Error e = tx.error();
    e.WithContext("point-in-time transaction");
    return tl::unexpected(e);
  }
  (void)engine_->Qmp(vm_, "nbd-server-stop", Json::object());
  TRY_CTX(engine_->Qmp(
              vm_, "nbd-server-start",
              {{"addr", {{"type", "unix"}, {"data", {{"path", socket}}}}}}),
          "start NBD server");
  server_started_ = true;
  for (size_t i = 0; i < disks_.size(); ++i) {
    LiveDisk& d = disks_[i];
    ExportedDisk& e = out_[i];
    e.source.socket = socket;
    e.source.export_name = d.req.name;
    Json args = {{"type", "nbd"},
                 {"id", kExportPrefix + tag_ + std::to_string(i)},
                 {"node-name", d.tmp_node},
                 {"name", d.req.name},
                 {"writable", false}};
    if (!e.source.bitmap.empty())
      args["bitmaps"] = Json::array({e.source.bitmap});
    TRY_CTX(engine_->Qmp(vm_, "block-export-add", args),
            "export " + d.req.name);
    d.export_id = args["id"];
  }
  return Ok();
}

void LiveExport::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& d : disks_)
    if (!d.export_id.empty())
      Quiet(engine_->Qmp(vm_, "block-export-del",
                         {{"id", d.export_id}, {"mode", "hard"}}),
            "block-export-del");
  if (server_started_)
    Quiet(engine_->Qmp(vm_, "nbd-server-stop", Json::object()),
          "nbd-server-stop");
  std::vector<std::string> jobs;
  for (auto& d : disks_) {
    if (d.job.empty()) continue;
    jobs.push_back(d.job);
    (void)engine_->Qmp(vm_, "block-job-cancel",
                       {{"device", d.job}, {"force", true}});
  }
  WaitJobsGone(engine_, vm_, jobs);
  // Exports go away asynchronously once their clients left.
  for (int attempt = 0; attempt < 50; ++attempt) {
    bool all = true;
    for (auto& d : disks_) {
      if (d.tmp_node.empty()) continue;
      auto del = engine_->Qmp(vm_, "blockdev-del", {{"node-name", d.tmp_node}});
      if (del || del.error().message().find("not found") != std::string::npos ||
          del.error().message().find("find node") != std::string::npos)
        d.tmp_node.clear();
      else
        all = false;
    }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& d : disks_)
    if (!d.tmp_node.empty())
      LOG_WARN("{}: fleecing node {} left behind", vm_, d.tmp_node);
  std::error_code ec;
  fs::remove_all(options_.work_dir, ec);
}

void LiveExport::Finish(bool committed) {
  if (finished_) return;
  finished_ = true;
  Stop();
  for (size_t i = 0; i < disks_.size(); ++i) {
    LiveDisk& d = disks_[i];
    const std::string& old = d.req.trusted_bitmap;
    if (committed) {
      if (!old.empty())
        (void)engine_->Qmp(vm_, "block-dirty-bitmap-remove",
                           {{"node", d.node}, {"name", old}});
      continue;
    }
    if (d.bitmap_disabled && d.new_bitmap) {
      Quiet(engine_->Qmp(
                vm_, "transaction",
                {{"actions",
                  Json::array(
                      {{{"type", "block-dirty-bitmap-merge"},
                        {"data",
                         {{"node", d.node},
                          {"target", old},
                          {"bitmaps", Json::array({options_.new_bitmap})}}}},
                       {{"type", "block-dirty-bitmap-enable"},
                        {"data", {{"node", d.node}, {"name", old}}}}})}}),
            "restore bitmap " + old);
    }
    if (d.new_bitmap)
      Quiet(engine_->Qmp(vm_, "block-dirty-bitmap-remove",
                         {{"node", d.node}, {"name", options_.new_bitmap}}),
            "remove bitmap");
  }
}

}  // namespace

void CleanLiveLeftovers(VmEngine* engine, const std::string& vm) {
  if (auto exports = engine->Qmp(vm, "query-block-exports", Json::object())) {
    for (const Json& e : *exports) {
      std::string id = e.value("id", "");
      if (Starts(id, kExportPrefix))
        Quiet(
            engine->Qmp(vm, "block-export-del", {{"id", id}, {"mode", "hard"}}),
            "block-export-del " + id);
    }
  }
  (void)engine->Qmp(vm, "nbd-server-stop", Json::object());
  if (auto jobs = engine->Qmp(vm, "query-jobs", Json::object())) {
    for (const Json& j : *jobs) {
      std::string id = j.value("id", "");
      if (Starts(id, kJobPrefix))
        (void)engine->Qmp(vm, "block-job-cancel",
                          {{"device", id}, {"force", true}});
    }
  }
  WaitJobsGone(engine, vm, {});
  auto nodes = engine->Qmp(vm, "query-named-block-nodes", {{"flat", true}});
  if (!nodes) return;
  for (int pass = 0; pass < 2; ++pass) {
    for (const Json& n : *nodes) {
      std::string name = n.value("node-name", "");
      if (!Starts(name, kNodePrefix)) continue;
      auto del = engine->Qmp(vm, "blockdev-del", {{"node-name", name}});
      if (del) LOG_INFO("{}: removed leftover backup node {}", vm, name);
    }
  }
}

Result<std::unique_ptr<DiskExport>> StartLiveExport(
    VmEngine* engine, const std::string& instance,
    const std::vector<ExportRequest>& disks, const ExportOptions& options) {
  CleanLiveLeftovers(engine, instance);
  auto exp = std::make_unique<LiveExport>(engine, instance, options);
  TRY(exp->Start(disks));
  return std::unique_ptr<DiskExport>(std::move(exp));
}

}  // namespace vireo
