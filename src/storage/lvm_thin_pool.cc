#include "storage/lvm_thin_pool.h"

#include <unistd.h>

#include <cstdlib>

#include "common/process.h"

namespace vireo {

namespace {

// Owner and volume are joined with '+', which LVM allows in names but our
// components never contain, so "<owner>+" prefixes exactly one owner's LVs.
constexpr char kSeparator = '+';

bool ValidLvmName(const std::string& value) {
  if (value.empty() || value.size() > 60 || value[0] == '.' ||
      value[0] == '-' || value[0] == '_') {
    return false;
  }
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Status CheckName(const std::string& what, const std::string& value) {
  if (!ValidLvmName(value))
    return Err(ErrorCode::kInvalidArgument,
               "invalid " + what + " '" + value + "'");
  return Ok();
}

bool HaveUdev() { return ::access("/run/udev/control", F_OK) == 0; }

std::string Bytes(uint64_t bytes) {
  return std::to_string((bytes + 511) / 512 * 512) + "b";
}

uint64_t ToU64(const Json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_string())
    return std::strtoull(j.get<std::string>().c_str(), nullptr, 10);
  return 0;
}

double ToDouble(const Json& j) {
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) return std::strtod(j.get<std::string>().c_str(), nullptr);
  return 0;
}

}  // namespace

Result<std::string> RunLvm(std::vector<std::string> argv) {
  if (argv.empty()) return Err(ErrorCode::kInternal, "empty LVM command");
  if (!HaveUdev()) {
    // Insert after the tool name: these are global options of every tool.
    argv.insert(argv.begin() + 1, {"--config",
                                   "devices{obtain_device_list_from_udev=0} "
                                   "activation{udev_sync=0 udev_rules=0}"});
    argv.insert(argv.begin(),
                {"env", "DM_DISABLE_UDEV=1", "LVM_SUPPRESS_FD_WARNINGS=1"});
  } else {
    argv.insert(argv.begin(), {"env", "LVM_SUPPRESS_FD_WARNINGS=1"});
  }
  return RunCommandOk(argv);
}

Result<std::unique_ptr<LvmThinPool>> LvmThinPool::Create(
    std::string name, std::string vg, std::string thin_pool) {
  TRY(CheckName("volume group", vg));
  TRY(CheckName("thin pool", thin_pool));
  ASSIGN_OR_RETURN(std::string out,
                   RunLvm({"lvs", "--reportformat", "json", "-o",
                           "lv_name,segtype", vg + "/" + thin_pool})
                       .map_error([&](Error e) {
                         return Error(ErrorCode::kInvalidArgument,
                                      "LVM thin pool " + vg + "/" + thin_pool +
                                          " not usable: " + e.message());
                       }));
  auto j = ParseJson(out);
  bool thin = false;
  if (j) {
    try {
      for (const auto& lv : (*j)["report"].at(0).at("lv"))
        thin |= lv.value("segtype", "") == "thin-pool";
    } catch (const std::exception&) {
    }
  }
  if (!thin)
    return Err(ErrorCode::kInvalidArgument,
               vg + "/" + thin_pool + " is not an LVM thin pool");
  return std::unique_ptr<LvmThinPool>(
      new LvmThinPool(std::move(name), std::move(vg), std::move(thin_pool)));
}

Result<std::vector<LvmThinPool::Lv>> LvmThinPool::ListLvs() const {
  ASSIGN_OR_RETURN(
      std::string out,
      RunLvm({"lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
              "-o", "lv_name,lv_size,data_percent,pool_lv", vg_}));
  ASSIGN_OR_RETURN(Json j, ParseJson(out));
  std::vector<Lv> lvs;
  try {
    for (const auto& item : j["report"].at(0).at("lv")) {
      Lv lv;
      lv.name = item.value("lv_name", "");
      lv.pool_lv = item.value("pool_lv", "");
      lv.size = ToU64(item.value("lv_size", Json()));
      lv.data_percent = ToDouble(item.value("data_percent", Json()));
      lvs.push_back(std::move(lv));
    }
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal,
               std::string("unexpected lvs output: ") + e.what());
  }
  return lvs;
}

Result<std::string> LvmThinPool::LvOfPath(const std::string& path) const {
  std::string prefix = "/dev/" + vg_ + "/";
  if (!path.starts_with(prefix) ||
      path.find(kSeparator, prefix.size()) == std::string::npos) {
    return Err(ErrorCode::kInvalidArgument,
               "'" + path + "' is not a volume of pool " + name_);
  }
  std::string lv = path.substr(prefix.size());
  if (lv.find('/') != std::string::npos)
    return Err(ErrorCode::kInvalidArgument,
               "'" + path + "' is not a volume of pool " + name_);
  return lv;
}

Result<std::string> LvmThinPool::NewThinVolume(const std::string& owner_id,
                                               const std::string& volume,
                                               uint64_t size) {
  TRY(CheckName("owner id", owner_id));
  TRY(CheckName("volume name", volume));
  if (size == 0)
    return Err(ErrorCode::kInvalidArgument,
               "volume '" + volume + "': size must be positive");
  std::string lv = owner_id + kSeparator + volume;
  ASSIGN_OR_RETURN(auto lvs, ListLvs());
  for (const auto& existing : lvs) {
    if (existing.name == lv)
      return Err(ErrorCode::kAlreadyExists,
                 "volume '" + lv + "' already exists in " + vg_);
  }
  TRY_CTX(RunLvm({"lvcreate", "-q", "--thin", "-V", Bytes(size), "-n", lv,
                  vg_ + "/" + pool_}),
          "create thin volume " + lv);
  std::string path = "/dev/" + vg_ + "/" + lv;
  // Without udev the node may be missing until LVM is asked to make it.
  if (::access(path.c_str(), F_OK) != 0) {
    (void)RunLvm({"lvchange", "-ay", "-K", vg_ + "/" + lv});
    (void)RunLvm({"vgscan", "--mknodes"});
  }
  if (::access(path.c_str(), F_OK) != 0) {
    (void)RunLvm({"lvremove", "-f", vg_ + "/" + lv});
    return Err(ErrorCode::kIo, "thin volume " + lv + " has no device node");
  }
  return path;
}

Result<std::string> LvmThinPool::CreateVolume(const std::string& owner_id,
                                              const std::string& volume,
                                              uint64_t size_bytes) {
  return NewThinVolume(owner_id, volume, size_bytes);
}

Result<std::string> LvmThinPool::CreateVolumeFrom(const std::string& owner_id,
                                                  const std::string& volume,
                                                  const std::string& source,
                                                  uint64_t min_size) {
  ASSIGN_OR_RETURN(ImageInfo info, ProbeImage(source));
  if (info.format != "qcow2" && info.format != "raw")
    return Err(ErrorCode::kInvalidArgument,
               "image '" + source + "' has format '" + info.format +
                   "'; only qcow2 and raw are supported");
  if (!info.backing_file.empty())
    return Err(ErrorCode::kInvalidArgument,
               "image '" + source + "' refers to another file ('" +
                   info.backing_file + "'); flatten it first");
  uint64_t size = std::max(info.virtual_size, min_size);
  ASSIGN_OR_RETURN(std::string path, NewThinVolume(owner_id, volume, size));
  // -n: write into the existing device instead of creating a file.
  auto copied = RunCommandOk({"qemu-img", "convert", "-q", "-n", "-f",
                              info.format, "-O", "raw", source, path},
                             std::chrono::seconds(1800));
  if (!copied) {
    (void)DeleteVolume(path);
    Error e = copied.error();
    e.WithContext("copy image " + source + " into " + path);
    return tl::unexpected(e);
  }
  return path;
}

Result<std::string> LvmThinPool::CreateLinkedClone(const std::string&,
                                                   const std::string& volume,
                                                   const std::string&,
                                                   const std::string&,
                                                   uint64_t) {
  return Err(ErrorCode::kFailedPrecondition,
             "pool " + name_ +
                 " (lvm-thin) cannot make linked clones (volume " + volume +
                 "); use a full copy or a dir pool");
}

Status LvmThinPool::DeleteVolume(const std::string& path) {
  ASSIGN_OR_RETURN(std::string lv, LvOfPath(path));
  ASSIGN_OR_RETURN(auto lvs, ListLvs());
  for (const auto& existing : lvs) {
    if (existing.name == lv) {
      TRY_CTX(RunLvm({"lvremove", "-q", "-f", vg_ + "/" + lv}),
              "remove thin volume " + lv);
      break;
    }
  }
  return Ok();
}

Status LvmThinPool::DeleteOwner(const std::string& owner_id) {
  TRY(CheckName("owner id", owner_id));
  ASSIGN_OR_RETURN(auto lvs, ListLvs());
  std::string prefix = owner_id + kSeparator;
  for (const auto& lv : lvs) {
    if (lv.pool_lv == pool_ && lv.name.starts_with(prefix)) {
      TRY_CTX(RunLvm({"lvremove", "-q", "-f", vg_ + "/" + lv.name}),
              "remove thin volume " + lv.name);
    }
  }
  return Ok();
}

Status LvmThinPool::ResizeVolume(const std::string& path, uint64_t new_size) {
  ASSIGN_OR_RETURN(std::string lv, LvOfPath(path));
  ASSIGN_OR_RETURN(auto lvs, ListLvs());
  for (const auto& existing : lvs) {
    if (existing.name != lv) continue;
    if (new_size < existing.size)
      return Err(ErrorCode::kInvalidArgument,
                 "volume '" + path + "' is " + std::to_string(existing.size) +
                     " bytes; shrinking to " + std::to_string(new_size) +
                     " is refused (data would be lost)");
    if (new_size == existing.size) return Ok();
    TRY_CTX(RunLvm({"lvextend", "-q", "-L", Bytes(new_size), vg_ + "/" + lv}),
            "grow thin volume " + lv);
    return Ok();
  }
  return Err(ErrorCode::kNotFound, "volume '" + path + "' not found");
}

Result<Json> LvmThinPool::Usage() const {
  ASSIGN_OR_RETURN(auto lvs, ListLvs());
  uint64_t capacity = 0, used = 0, allocated = 0, volumes = 0;
  for (const auto& lv : lvs) {
    if (lv.name == pool_) {
      capacity = lv.size;
      used = static_cast<uint64_t>(static_cast<double>(lv.size) *
                                   lv.data_percent / 100.0);
    } else if (lv.pool_lv == pool_) {
      allocated += lv.size;
      ++volumes;
    }
  }
  return Json{{"name", name_},
              {"driver", "lvm-thin"},
              {"vg", vg_},
              {"thin_pool", pool_},
              {"capacity_bytes", capacity},
              {"used_bytes", used},
              {"allocated_bytes", allocated},
              {"volumes", volumes}};
}

}  // namespace vireo
