#include "api/instance_request.h"

#include <limits>

#include "common/units.h"

namespace vireo {

namespace {

std::string FieldName(std::string_view where, std::string_view key) {
  return where.empty() ? std::string(key)
                       : std::string(where) + "." + std::string(key);
}

tl::unexpected<Error> FieldErr(std::string_view field, std::string_view must) {
  return Err(ErrorCode::kInvalidArgument,
             "field '" + std::string(field) + "' must be " + std::string(must));
}

// Absent or null fields leave *out unchanged.
Status ReadString(const Json& j, const char* key, std::string* out,
                  std::string_view where = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_string()) return FieldErr(FieldName(where, key), "a string");
  *out = it->get<std::string>();
  return Ok();
}

Status ReadInt(const Json& j, const char* key, int* out,
               std::string_view where = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  const std::string field = FieldName(where, key);
  if (!it->is_number_integer()) return FieldErr(field, "an integer");
  if (it->is_number_unsigned()) {
    auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      return FieldErr(
          field, "at most " + std::to_string(std::numeric_limits<int>::max()));
    }
    *out = static_cast<int>(v);
    return Ok();
  }
  auto v = it->get<int64_t>();
  if (v < 0) return FieldErr(field, "a non-negative integer");
  if (v > std::numeric_limits<int>::max()) {
    return FieldErr(
        field, "at most " + std::to_string(std::numeric_limits<int>::max()));
  }
  *out = static_cast<int>(v);
  return Ok();
}

Status ReadBool(const Json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_boolean()) return FieldErr(key, "a boolean");
  *out = it->get<bool>();
  return Ok();
}

// A size is a byte count or a string with a binary unit ("512M").
Status ReadSize(const Json& j, const char* key, uint64_t* out,
                std::string_view where = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  const std::string field = FieldName(where, key);
  if (it->is_number_unsigned()) {
    *out = it->get<uint64_t>();
    return Ok();
  }
  if (it->is_number_integer()) return FieldErr(field, "a non-negative size");
  if (!it->is_string()) {
    return FieldErr(field,
                    "a size: an integer (bytes) or a string like \"512M\"");
  }
  auto size = ParseSize(it->get<std::string>());
  if (!size) {
    return Err(ErrorCode::kInvalidArgument,
               "field '" + field + "': " + size.error().message());
  }
  *out = *size;
  return Ok();
}

}  // namespace

Result<Json> ParseJsonObject(std::string_view body) {
  if (body.empty())
    return Err(ErrorCode::kInvalidArgument, "request body is empty");
  auto j = ParseJson(body);
  if (!j)
    return Err(ErrorCode::kInvalidArgument, "malformed JSON in request body");
  if (!j->is_object()) {
    return Err(ErrorCode::kInvalidArgument,
               std::string("request body must be a JSON object, got ") +
                   j->type_name());
  }
  return j;
}

Status RejectUnknownFields(const Json& object,
                           std::initializer_list<std::string_view> known,
                           std::string_view where) {
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (auto k : known) found = found || k == key;
    if (!found)
      return Err(ErrorCode::kInvalidArgument,
                 "unknown field '" + FieldName(where, key) + "'");
  }
  return Ok();
}

Result<CreateRequest> ParseCreateRequest(std::string_view body) {
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(body));
  TRY(RejectUnknownFields(
      j, {"name", "cpus", "memory", "kernel", "initrd", "cmdline", "disks",
          "nics", "networks", "restart_policy", "image", "copy", "root_size",
          "iso", "firmware", "os_type", "cloud_init", "start"}));
  CreateRequest r;
  auto name = j.find("name");
  if (name == j.end() || name->is_null()) {
    return Err(ErrorCode::kInvalidArgument, "missing field 'name'");
  }
  TRY(ReadString(j, "name", &r.name));
  TRY(ReadInt(j, "cpus", &r.cpus));
  TRY(ReadSize(j, "memory", &r.memory_bytes));
  TRY(ReadString(j, "kernel", &r.kernel));
  TRY(ReadString(j, "initrd", &r.initrd));
  TRY(ReadString(j, "cmdline", &r.cmdline));
  TRY(ReadInt(j, "nics", &r.nics));
  std::string policy;
  TRY(ReadString(j, "restart_policy", &policy));
  if (!policy.empty()) {
    auto parsed = ParseRestartPolicy(policy);
    if (!parsed) {
      return Err(ErrorCode::kInvalidArgument,
                 "field 'restart_policy' must be never, on-failure or always");
    }
    r.restart_policy = *parsed;
  }
  auto disks = j.find("disks");
  if (disks != j.end() && !disks->is_null()) {
    if (!disks->is_array()) return FieldErr("disks", "an array");
    for (size_t i = 0; i < disks->size(); ++i) {
      const Json& d = (*disks)[i];
      const std::string where = "disks[" + std::to_string(i) + "]";
      if (!d.is_object()) return FieldErr(where, "an object");
      TRY(RejectUnknownFields(d, {"size", "source", "pool"}, where));
      DiskRequest disk;
      TRY(ReadSize(d, "size", &disk.size_bytes, where));
      TRY(ReadString(d, "source", &disk.source, where));
      TRY(ReadString(d, "pool", &disk.pool, where));
      r.disks.push_back(std::move(disk));
    }
  }
  auto networks = j.find("networks");
  if (networks != j.end() && !networks->is_null()) {
    if (!networks->is_array()) return FieldErr("networks", "an array");
    for (size_t i = 0; i < networks->size(); ++i) {
      const Json& n = (*networks)[i];
      const std::string where = "networks[" + std::to_string(i) + "]";
      if (!n.is_object()) return FieldErr(where, "an object");
      TRY(RejectUnknownFields(n, {"network", "mac", "ip"}, where));
      NicRequest nic;
      TRY(ReadString(n, "network", &nic.network, where));
      TRY(ReadString(n, "mac", &nic.mac, where));
      TRY(ReadString(n, "ip", &nic.ip, where));
      if (nic.network.empty())
        return Err(ErrorCode::kInvalidArgument,
                   "missing field '" + where + ".network'");
      r.networks.push_back(std::move(nic));
    }
  }
  TRY(ReadString(j, "image", &r.image));
  TRY(ReadBool(j, "copy", &r.copy_image));
  TRY(ReadSize(j, "root_size", &r.root_size));
  TRY(ReadString(j, "iso", &r.iso));
  TRY(ReadString(j, "firmware", &r.firmware));
  TRY(ReadString(j, "os_type", &r.os_type));
  TRY(ReadBool(j, "start", &r.start));
  auto ci = j.find("cloud_init");
  if (ci != j.end() && !ci->is_null()) {
    if (!ci->is_object()) return FieldErr("cloud_init", "an object");
    TRY(RejectUnknownFields(*ci, {"hostname", "ssh_keys", "user_data"},
                            "cloud_init"));
    TRY(ReadString(*ci, "hostname", &r.cloud_init.hostname, "cloud_init"));
    TRY(ReadString(*ci, "user_data", &r.cloud_init.user_data, "cloud_init"));
    auto keys = ci->find("ssh_keys");
    if (keys != ci->end() && !keys->is_null()) {
      if (!keys->is_array())
        return FieldErr("cloud_init.ssh_keys", "an array of strings");
      for (const auto& k : *keys) {
        if (!k.is_string())
          return FieldErr("cloud_init.ssh_keys", "an array of strings");
        r.cloud_init.ssh_keys.push_back(k.get<std::string>());
      }
    }
  }
  if (r.firmware != "bios" && r.firmware != "uefi")
    return FieldErr("firmware", "bios or uefi");
  if (r.os_type != "linux" && r.os_type != "windows" && r.os_type != "other")
    return FieldErr("os_type", "linux, windows or other");
  return r;
}

Result<StateChangeRequest> ParseStateChangeRequest(std::string_view body) {
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(body));
  TRY(RejectUnknownFields(j, {"action", "force", "timeout"}));
  std::string action;
  TRY(ReadString(j, "action", &action));
  if (action.empty())
    return Err(ErrorCode::kInvalidArgument, "missing field 'action'");
  StateChangeRequest r;
  auto parsed = ParseStateAction(action);
  if (!parsed) {
    return Err(ErrorCode::kInvalidArgument,
               "field 'action' must be start, stop, restart, pause or resume");
  }
  r.action = *parsed;
  TRY(ReadBool(j, "force", &r.force));
  TRY(ReadInt(j, "timeout", &r.timeout_s));
  return r;
}

Result<std::string> ParseTokenCreateRequest(std::string_view body) {
  ASSIGN_OR_RETURN(Json j, ParseJsonObject(body));
  TRY(RejectUnknownFields(j, {"name"}));
  std::string name;
  TRY(ReadString(j, "name", &name));
  if (name.empty())
    return Err(ErrorCode::kInvalidArgument, "missing field 'name'");
  return name;
}

}  // namespace vireo
