#include "core/instance.h"

#include <array>
#include <limits>
#include <utility>

namespace vireo {

namespace {

constexpr std::array<std::pair<InstanceState, std::string_view>, 6>
    kStateNames = {{
        {InstanceState::kStopped, "stopped"},
        {InstanceState::kStarting, "starting"},
        {InstanceState::kRunning, "running"},
        {InstanceState::kPaused, "paused"},
        {InstanceState::kStopping, "stopping"},
        {InstanceState::kError, "error"},
    }};

constexpr std::array<std::pair<RestartPolicy, std::string_view>, 3>
    kPolicyNames = {{
        {RestartPolicy::kNever, "never"},
        {RestartPolicy::kOnFailure, "on-failure"},
        {RestartPolicy::kAlways, "always"},
    }};

// Field readers check the JSON type themselves so that every error names the
// offending field; nlohmann's own messages do not. Absent fields keep the
// default already in *out unless required.
Status NeedObject(const Json& j, std::string_view what) {
  if (!j.is_object()) {
    return Err(
        ErrorCode::kInvalidArgument,
        std::string(what) + ": expected a JSON object, got " + j.type_name());
  }
  return Ok();
}

const Json* Field(const Json& j, const char* key, bool required,
                  Status* status) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      *status = Err(ErrorCode::kInvalidArgument,
                    std::string("missing field '") + key + "'");
    return nullptr;
  }
  return &*it;
}

Status ReadString(const Json& j, const char* key, std::string* out,
                  bool required = false) {
  Status status;
  const Json* f = Field(j, key, required, &status);
  if (!f) return status;
  if (!f->is_string()) {
    return Err(ErrorCode::kInvalidArgument, std::string("field '") + key +
                                                "' must be a string, got " +
                                                f->type_name());
  }
  *out = f->get<std::string>();
  return Ok();
}

template <typename Int>
Status ReadInt(const Json& j, const char* key, Int* out,
               bool required = false) {
  Status status;
  const Json* f = Field(j, key, required, &status);
  if (!f) return status;
  auto bad = [&](const std::string& why) {
    return Err(ErrorCode::kInvalidArgument,
               std::string("field '") + key + "' " + why);
  };
  if (f->is_number_unsigned()) {
    uint64_t v = f->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<Int>::max()))
      return bad("is out of range");
    *out = static_cast<Int>(v);
  } else if (f->is_number_integer()) {
    int64_t v = f->get<int64_t>();
    if constexpr (std::is_unsigned_v<Int>) {
      if (v < 0) return bad("must not be negative");
    } else {
      if (v < static_cast<int64_t>(std::numeric_limits<Int>::min()) ||
          v > static_cast<int64_t>(std::numeric_limits<Int>::max())) {
        return bad("is out of range");
      }
    }
    *out = static_cast<Int>(v);
  } else {
    return bad(std::string("must be an integer, got ") + f->type_name());
  }
  return Ok();
}

Status ReadBool(const Json& j, const char* key, bool* out) {
  Status status;
  const Json* f = Field(j, key, false, &status);
  if (!f) return status;
  if (!f->is_boolean()) {
    return Err(ErrorCode::kInvalidArgument, std::string("field '") + key +
                                                "' must be a boolean, got " +
                                                f->type_name());
  }
  *out = f->get<bool>();
  return Ok();
}

Result<DiskConfig> DiskFromJson(const Json& j) {
  TRY(NeedObject(j, "disk"));
  DiskConfig d;
  TRY(ReadString(j, "name", &d.name, true));
  TRY_CTX(ReadString(j, "path", &d.path), "disk '" + d.name + "'");
  TRY_CTX(ReadInt(j, "size", &d.size_bytes), "disk '" + d.name + "'");
  std::string ctx = "disk '" + d.name + "'";
  TRY_CTX(ReadString(j, "source", &d.source), ctx);
  TRY_CTX(ReadString(j, "format", &d.format), ctx);
  TRY_CTX(ReadString(j, "media", &d.media), ctx);
  TRY_CTX(ReadBool(j, "readonly", &d.readonly), ctx);
  TRY_CTX(ReadString(j, "image", &d.image), ctx);
  TRY_CTX(ReadString(j, "pool", &d.pool), ctx);
  TRY_CTX(ReadString(j, "volume", &d.volume), ctx);
  TRY_CTX(ReadString(j, "bus", &d.bus), ctx);
  return d;
}

Result<NicConfig> NicFromJson(const Json& j) {
  TRY(NeedObject(j, "nic"));
  NicConfig n;
  TRY(ReadString(j, "name", &n.name, true));
  TRY_CTX(ReadString(j, "type", &n.type), "nic '" + n.name + "'");
  std::string ctx = "nic '" + n.name + "'";
  TRY_CTX(ReadString(j, "mac", &n.mac), ctx);
  TRY_CTX(ReadString(j, "network", &n.network), ctx);
  TRY_CTX(ReadString(j, "ip", &n.ip), ctx);
  TRY_CTX(ReadString(j, "model", &n.model), ctx);
  return n;
}

// Values are not checked against the option registry here: a stored document
// written by a newer vireo must still load.
Status ReadStringMap(const Json& j, const char* key,
                     std::map<std::string, std::string>* out) {
  Status status;
  const Json* f = Field(j, key, false, &status);
  if (!f) return status;
  if (!f->is_object()) {
    return Err(ErrorCode::kInvalidArgument, std::string("field '") + key +
                                                "' must be an object, got " +
                                                f->type_name());
  }
  out->clear();
  for (auto it = f->begin(); it != f->end(); ++it) {
    if (!it->is_string())
      return Err(ErrorCode::kInvalidArgument,
                 std::string("field '") + key + "." + it.key() +
                     "' must be a string, got " + it->type_name());
    (*out)[it.key()] = it->get<std::string>();
  }
  return Ok();
}

template <typename T, typename F>
Status ReadArray(const Json& j, const char* key, std::vector<T>* out, F parse) {
  Status status;
  const Json* f = Field(j, key, false, &status);
  if (!f) return status;
  if (!f->is_array()) {
    return Err(ErrorCode::kInvalidArgument, std::string("field '") + key +
                                                "' must be an array, got " +
                                                f->type_name());
  }
  out->clear();
  for (size_t i = 0; i < f->size(); ++i) {
    auto item = parse((*f)[i]);
    if (!item) {
      Error e = std::move(item).error();
      e.WithContext(std::string(key) + "[" + std::to_string(i) + "]");
      return tl::unexpected<Error>(std::move(e));
    }
    out->push_back(std::move(*item));
  }
  return Ok();
}

Result<InstanceConfig> ConfigFromJsonUnsafe(const Json& j) {
  TRY(NeedObject(j, "config"));
  InstanceConfig c;
  TRY(ReadString(j, "name", &c.name, true));
  TRY(ReadInt(j, "cpus", &c.cpus));
  TRY(ReadInt(j, "memory", &c.memory_bytes));
  TRY(ReadString(j, "kernel", &c.kernel));
  TRY(ReadString(j, "initrd", &c.initrd));
  TRY(ReadString(j, "cmdline", &c.cmdline));
  TRY(ReadArray(j, "disks", &c.disks, DiskFromJson));
  TRY(ReadArray(j, "nics", &c.nics, NicFromJson));
  std::string policy = std::string(ToString(c.restart_policy));
  TRY(ReadString(j, "restart_policy", &policy));
  ASSIGN_OR_RETURN(c.restart_policy, ParseRestartPolicy(policy));
  TRY(ReadString(j, "firmware", &c.firmware));
  TRY(ReadString(j, "os_type", &c.os_type));
  TRY(ReadString(j, "uefi_vars", &c.uefi_vars));
  TRY(ReadStringMap(j, "options", &c.options));
  return c;
}

Result<InstanceStatus> StatusFromJsonUnsafe(const Json& j) {
  TRY(NeedObject(j, "status"));
  InstanceStatus s;
  std::string state = std::string(ToString(s.state));
  TRY(ReadString(j, "state", &state));
  ASSIGN_OR_RETURN(s.state, ParseInstanceState(state));
  TRY(ReadInt(j, "pid", &s.pid));
  TRY(ReadString(j, "last_error", &s.last_error));
  TRY(ReadInt(j, "started_at", &s.started_at));
  TRY(ReadInt(j, "restart_count", &s.restart_count));
  TRY(ReadBool(j, "stop_requested", &s.stop_requested));
  return s;
}

Result<Instance> InstanceFromJsonUnsafe(const Json& j) {
  TRY(NeedObject(j, "instance"));
  Instance inst;
  TRY(ReadString(j, "id", &inst.id, true));
  TRY(ReadInt(j, "created_at", &inst.created_at));
  Status status;
  const Json* config = Field(j, "config", true, &status);
  if (!config) return tl::unexpected<Error>(std::move(status).error());
  // The top-level name is a convenience copy; the config's name is the truth,
  // but a disagreement means the document was tampered with or mis-built.
  Json config_copy = *config;
  std::string name;
  TRY(ReadString(j, "name", &name));
  if (config_copy.is_object() && !config_copy.contains("name") &&
      !name.empty()) {
    config_copy["name"] = name;
  }
  auto parsed_config = ConfigFromJsonUnsafe(config_copy);
  if (!parsed_config) {
    Error e = std::move(parsed_config).error();
    e.WithContext("config");
    return tl::unexpected<Error>(std::move(e));
  }
  inst.config = std::move(*parsed_config);
  if (!name.empty() && name != inst.config.name) {
    return Err(ErrorCode::kInvalidArgument,
               "name '" + name + "' does not match config name '" +
                   inst.config.name + "'");
  }
  if (const Json* st = Field(j, "status", false, &status)) {
    auto parsed_status = StatusFromJsonUnsafe(*st);
    if (!parsed_status) {
      Error e = std::move(parsed_status).error();
      e.WithContext("status");
      return tl::unexpected<Error>(std::move(e));
    }
    inst.status = std::move(*parsed_status);
  }
  return inst;
}

// The readers above check types before every get<>(), so nlohmann should
// never throw; the guard keeps a future slip from aborting on bad input.
template <typename F>
auto NoThrow(F f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInvalidArgument,
               std::string("invalid JSON document: ") + e.what());
  }
}

}  // namespace

std::string_view ToString(InstanceState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "unknown";
}

Result<InstanceState> ParseInstanceState(std::string_view text) {
  for (const auto& [s, name] : kStateNames) {
    if (name == text) return s;
  }
  return Err(ErrorCode::kInvalidArgument,
             "unknown instance state '" + std::string(text) + "'");
}

std::string_view ToString(RestartPolicy policy) {
  for (const auto& [p, name] : kPolicyNames) {
    if (p == policy) return name;
  }
  return "unknown";
}

Result<RestartPolicy> ParseRestartPolicy(std::string_view text) {
  for (const auto& [p, name] : kPolicyNames) {
    if (name == text) return p;
  }
  return Err(ErrorCode::kInvalidArgument,
             "unknown restart policy '" + std::string(text) +
                 "' (expected never, on-failure or always)");
}

Json ToJson(const InstanceConfig& config) {
  Json disks = Json::array();
  for (const auto& d : config.disks) {
    disks.push_back({{"name", d.name},
                     {"path", d.path},
                     {"size", d.size_bytes},
                     {"source", d.source},
                     {"format", d.format},
                     {"media", d.media},
                     {"readonly", d.readonly},
                     {"image", d.image},
                     {"pool", d.pool},
                     {"volume", d.volume},
                     {"bus", d.bus}});
  }
  Json nics = Json::array();
  for (const auto& n : config.nics) {
    nics.push_back({{"name", n.name},
                    {"type", n.type},
                    {"mac", n.mac},
                    {"network", n.network},
                    {"ip", n.ip},
                    {"model", n.model}});
  }
  return Json{{"name", config.name},
              {"cpus", config.cpus},
              {"memory", config.memory_bytes},
              {"kernel", config.kernel},
              {"initrd", config.initrd},
              {"cmdline", config.cmdline},
              {"disks", std::move(disks)},
              {"nics", std::move(nics)},
              {"restart_policy", ToString(config.restart_policy)},
              {"firmware", config.firmware},
              {"os_type", config.os_type},
              {"uefi_vars", config.uefi_vars},
              {"options", Json(config.options)}};
}

Json ToJson(const InstanceStatus& status) {
  return Json{{"state", ToString(status.state)},
              {"pid", status.pid},
              {"last_error", status.last_error},
              {"started_at", status.started_at},
              {"restart_count", status.restart_count},
              {"stop_requested", status.stop_requested}};
}

Json ToJson(const Instance& instance) {
  return Json{{"id", instance.id},
              {"name", instance.name()},
              {"created_at", instance.created_at},
              {"config", ToJson(instance.config)},
              {"status", ToJson(instance.status)}};
}

Result<InstanceConfig> InstanceConfigFromJson(const Json& j) {
  return NoThrow([&] { return ConfigFromJsonUnsafe(j); });
}

Result<InstanceStatus> InstanceStatusFromJson(const Json& j) {
  return NoThrow([&] { return StatusFromJsonUnsafe(j); });
}

Result<Instance> InstanceFromJson(const Json& j) {
  return NoThrow([&] { return InstanceFromJsonUnsafe(j); });
}

}  // namespace vireo
