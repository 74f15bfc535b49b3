#include "core/snapshot_disks.h"

#include <chrono>
#include <thread>

#include "common/log.h"
#include "common/process.h"
#include "common/random.h"

namespace vireo {

namespace {

using namespace std::chrono_literals;

// A memory snapshot of a big guest under TCG writes GiBs; give it time.
constexpr auto kJobTimeout = 30min;
constexpr auto kQemuImgTimeout = std::chrono::seconds(600);

Json NodeList(const std::vector<SnapshotTarget>& targets) {
  Json nodes = Json::array();
  for (const auto& t : targets) nodes.push_back(t.node);
  return nodes;
}

}  // namespace

Result<std::vector<SnapshotTarget>> SnapshotDisks::Targets(
    const Instance& inst) {
  std::vector<SnapshotTarget> out;
  for (const DiskConfig& d : inst.config.disks) {
    if (d.media != "disk" || d.readonly) continue;
    if (d.format != "qcow2")
      return Err(ErrorCode::kFailedPrecondition,
                 "snapshots need qcow2 disks: disk '" + d.name + "' of '" +
                     inst.name() + "' is " + d.format +
                     " (e.g. an LVM-thin volume)");
    out.push_back({d.name, d.path, ""});
  }
  if (out.empty())
    return Err(ErrorCode::kFailedPrecondition,
               "instance '" + inst.name() +
                   "' has no writable disk to hold a snapshot (snapshots need "
                   "qcow2 disks)");
  return out;
}

Status SnapshotDisks::ResolveNodes(std::vector<SnapshotTarget>* targets) {
  ASSIGN_OR_RETURN(
      Json nodes,
      engine_->Qmp(instance_, "query-named-block-nodes", {{"flat", true}}));
  for (auto& t : *targets) {
    for (const Json& n : nodes) {
      if (n.value("drv", "") == "qcow2" && n.value("file", "") == t.path) {
        t.node = n.value("node-name", "");
        break;
      }
    }
    if (t.node.empty())
      return Err(ErrorCode::kInternal, "instance '" + instance_ +
                                           "': no qcow2 block node for disk '" +
                                           t.disk + "' (" + t.path + ")");
  }
  return Ok();
}

Status SnapshotDisks::CreateLive(const std::vector<SnapshotTarget>& targets,
                                 const std::string& tag) {
  Json actions = Json::array();
  for (const auto& t : targets)
    actions.push_back({{"type", "blockdev-snapshot-internal-sync"},
                       {"data", {{"device", t.node}, {"name", tag}}}});
  TRY_CTX(engine_->Qmp(instance_, "transaction", {{"actions", actions}}),
          "snapshot " + tag);
  return Ok();
}

Status SnapshotDisks::RunJob(const std::string& command, Json arguments) {
  std::string job = "vireo-" + RandomHex(4);
  arguments["job-id"] = job;
  TRY(engine_->Qmp(instance_, command, arguments));
  // Polling query-jobs instead of waiting for JOB_STATUS_CHANGE keeps the
  // engine's event path untouched; the jobs take seconds, 50 ms is cheap.
  auto deadline = std::chrono::steady_clock::now() + kJobTimeout;
  while (true) {
    ASSIGN_OR_RETURN(Json jobs, engine_->Qmp(instance_, "query-jobs", {}));
    const Json* mine = nullptr;
    for (const Json& j : jobs)
      if (j.value("id", "") == job) mine = &j;
    if (!mine)
      return Err(ErrorCode::kInternal, command + " job " + job + " vanished");
    if (mine->value("status", "") == "concluded") {
      std::string error = mine->value("error", "");
      (void)engine_->Qmp(instance_, "job-dismiss", {{"id", job}});
      if (!error.empty())
        return Err(ErrorCode::kInternal, command + ": " + error);
      return Ok();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      (void)engine_->Qmp(instance_, "job-cancel", {{"id", job}});
      return Err(ErrorCode::kTimeout, command + " did not finish in time");
    }
    std::this_thread::sleep_for(50ms);
  }
}

Status SnapshotDisks::SaveMemory(const std::vector<SnapshotTarget>& targets,
                                 const std::string& tag) {
  TRY_CTX(RunJob("snapshot-save", {{"tag", tag},
                                   {"vmstate", targets.front().node},
                                   {"devices", NodeList(targets)}}),
          "memory snapshot " + tag);
  return Ok();
}

Status SnapshotDisks::LoadMemory(const std::vector<SnapshotTarget>& targets,
                                 const std::string& tag) {
  TRY_CTX(RunJob("snapshot-load", {{"tag", tag},
                                   {"vmstate", targets.front().node},
                                   {"devices", NodeList(targets)}}),
          "restore memory snapshot " + tag);
  return Ok();
}

Status SnapshotDisks::DeleteLive(const std::vector<SnapshotTarget>& targets,
                                 const std::string& tag) {
  for (const auto& t : targets) {
    auto del = engine_->Qmp(instance_, "blockdev-snapshot-delete-internal-sync",
                            {{"device", t.node}, {"name", tag}});
    // A disk attached after the snapshot was taken does not hold it.
    if (!del && del.error().message().find("not found") == std::string::npos &&
        del.error().message().find("Can't find") == std::string::npos)
      return tl::unexpected(del.error());
  }
  return Ok();
}

Status SnapshotDisks::CreateOffline(const std::vector<SnapshotTarget>& targets,
                                    const std::string& tag) {
  for (size_t i = 0; i < targets.size(); ++i) {
    auto made =
        RunCommandOk({"qemu-img", "snapshot", "-q", "-c", tag, targets[i].path},
                     kQemuImgTimeout);
    if (!made) {
      // All disks or none: undo the ones already done.
      for (size_t k = 0; k < i; ++k)
        (void)RunCommandOk(
            {"qemu-img", "snapshot", "-q", "-d", tag, targets[k].path});
      Error e = made.error();
      e.WithContext("snapshot disk " + targets[i].disk);
      return tl::unexpected(e);
    }
  }
  return Ok();
}

Status SnapshotDisks::ApplyOffline(const std::vector<SnapshotTarget>& targets,
                                   const std::string& tag) {
  for (const auto& t : targets)
    TRY_CTX(RunCommandOk({"qemu-img", "snapshot", "-q", "-a", tag, t.path},
                         kQemuImgTimeout),
            "restore disk " + t.disk);
  return Ok();
}

Status SnapshotDisks::DeleteOffline(const std::vector<SnapshotTarget>& targets,
                                    const std::string& tag) {
  for (const auto& t : targets) {
    auto del = RunCommandOk({"qemu-img", "snapshot", "-q", "-d", tag, t.path},
                            kQemuImgTimeout);
    if (!del)
      LOG_WARN("delete snapshot {} of {}: {}", tag, t.path,
               del.error().ToString());
  }
  return Ok();
}

std::vector<SnapshotDisk> SnapshotDisks::Sizes(
    const std::vector<SnapshotTarget>& targets, const std::string& tag) {
  std::vector<SnapshotDisk> out;
  for (const auto& t : targets) {
    SnapshotDisk d{t.disk, 0, 0};
    // -U: a running QEMU holds the image lock; reading metadata is safe.
    auto info = RunCommandOk(
        {"qemu-img", "info", "-U", "--output=json", "-f", "qcow2", t.path});
    if (info) {
      auto j = ParseJson(*info);
      if (j && j->is_object()) {
        d.virtual_size = j->value("virtual-size", 0ull);
        for (const Json& s : j->value("snapshots", Json::array()))
          if (s.value("name", "") == tag)
            d.vm_state_size = s.value("vm-state-size", 0ull);
      }
    }
    out.push_back(d);
  }
  return out;
}

}  // namespace vireo
