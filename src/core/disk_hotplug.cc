#include "core/disk_hotplug.h"

#include <thread>

#include "common/log.h"
#include "common/random.h"

namespace vireo {

namespace {

bool IsProtocol(const std::string& drv) {
  return drv == "file" || drv == "host_device";
}

}  // namespace

Result<DiskHotplug::Found> DiskHotplug::Find(const std::string& path) {
  ASSIGN_OR_RETURN(Json blocks, engine_->Qmp(instance_, "query-block", {}));
  if (blocks.is_array()) {
    for (const Json& b : blocks) {
      const Json& inserted = b.value("inserted", Json::object());
      if (inserted.is_object() && inserted.value("file", "") == path) {
        return Found{b.value("qdev", ""), inserted.value("node-name", "")};
      }
    }
  }
  return Err(ErrorCode::kNotFound,
             "instance '" + instance_ + "' has no device using " + path);
}

Result<bool> DiskHotplug::Attached(const std::string& path) {
  auto found = Find(path);
  if (found) return true;
  if (found.error().code() == ErrorCode::kNotFound) return false;
  return tl::unexpected(found.error());
}

Status DiskHotplug::DeleteNodes(const std::string& path) {
  ASSIGN_OR_RETURN(
      Json nodes,
      engine_->Qmp(instance_, "query-named-block-nodes", {{"flat", true}}));
  // Format nodes sit on top of their protocol node: delete them first.
  for (int pass = 0; pass < 2; ++pass) {
    for (const Json& n : nodes) {
      if (n.value("file", "") != path) continue;
      if (IsProtocol(n.value("drv", "")) != (pass == 1)) continue;
      std::string node = n.value("node-name", "");
      auto del = engine_->Qmp(instance_, "blockdev-del", {{"node-name", node}});
      if (!del)
        LOG_WARN("{}: blockdev-del {}: {}", instance_, node,
                 del.error().ToString());
    }
  }
  return Ok();
}

Status DiskHotplug::Plug(const DiskConfig& disk) {
  std::string tag = RandomHex(4);
  std::string file_node = "hpf" + tag;
  std::string fmt_node = "hpn" + tag;
  std::string protocol =
      disk.path.rfind("/dev/", 0) == 0 ? "host_device" : "file";
  TRY_CTX(engine_->Qmp(instance_, "blockdev-add",
                       {{"driver", protocol},
                        {"filename", disk.path},
                        {"node-name", file_node},
                        {"cache", {{"direct", false}}}}),
          "hot-plug " + disk.name);
  auto fmt = engine_->Qmp(
      instance_, "blockdev-add",
      {{"driver", disk.format}, {"file", file_node}, {"node-name", fmt_node}});
  if (!fmt) {
    (void)engine_->Qmp(instance_, "blockdev-del", {{"node-name", file_node}});
    Error e = fmt.error();
    e.WithContext("hot-plug " + disk.name);
    return tl::unexpected(e);
  }
  std::string last_error;
  for (int port = 0; port < kPorts; ++port) {
    auto added = engine_->Qmp(instance_, "device_add",
                              {{"driver", "virtio-blk-pci"},
                               {"drive", fmt_node},
                               {"id", "hpd" + tag},
                               {"bus", "hp" + std::to_string(port)}});
    if (added) return Ok();
    last_error = added.error().message();
  }
  (void)engine_->Qmp(instance_, "blockdev-del", {{"node-name", fmt_node}});
  (void)engine_->Qmp(instance_, "blockdev-del", {{"node-name", file_node}});
  return Err(ErrorCode::kFailedPrecondition,
             "hot-plug " + disk.name + " into '" + instance_ +
                 "': no free hot-plug slot (" + std::to_string(kPorts) +
                 " per VM; stop it to attach more): " + last_error);
}

Status DiskHotplug::Unplug(const std::string& path,
                           std::chrono::seconds timeout) {
  ASSIGN_OR_RETURN(Found found, Find(path));
  // query-block names the virtio backend; device_del wants the PCI device.
  std::string device = found.qdev;
  const std::string backend = "/virtio-backend";
  if (device.ends_with(backend)) device.resize(device.size() - backend.size());
  if (device.empty())
    return Err(ErrorCode::kFailedPrecondition,
               path + " is not attached to a device of '" + instance_ + "'");
  TRY_CTX(engine_->Qmp(instance_, "device_del", {{"id", device}}),
          "detach " + path);
  // The guest must acknowledge (PCIe/ACPI eject); Linux takes a few seconds.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    ASSIGN_OR_RETURN(bool attached, Attached(path));
    if (!attached) break;
    if (std::chrono::steady_clock::now() > deadline)
      return Err(ErrorCode::kTimeout,
                 "the guest of '" + instance_ + "' did not release " + path +
                     " within " + std::to_string(timeout.count()) +
                     " s (does it support PCIe hot-plug?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return DeleteNodes(path);
}

Status DiskHotplug::Resize(const std::string& path, uint64_t new_size) {
  ASSIGN_OR_RETURN(Found found, Find(path));
  TRY_CTX(engine_->Qmp(instance_, "block_resize",
                       {{"node-name", found.node_name},
                        {"size", (new_size + 511) / 512 * 512}}),
          "grow " + path);
  return Ok();
}

}  // namespace vireo
