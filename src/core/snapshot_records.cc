#include "core/snapshot_records.h"

#include <algorithm>

namespace vireo {

namespace {
constexpr const char* kKind = "snapshot";
constexpr const char* kHeadKind = "snapshot-head";
}  // namespace

std::string SnapshotKey(const std::string& instance_id,
                        const std::string& name) {
  return instance_id + "/" + name;
}

Json ToJson(const SnapshotRecord& r) {
  Json disks = Json::array();
  for (const auto& d : r.disks)
    disks.push_back({{"disk", d.disk},
                     {"virtual_size", d.virtual_size},
                     {"vm_state_size", d.vm_state_size}});
  return {{"instance_id", r.instance_id}, {"name", r.name},
          {"parent", r.parent},           {"created_at", r.created_at},
          {"memory", r.memory},           {"disks", std::move(disks)}};
}

Result<SnapshotRecord> SnapshotRecordFromJson(const Json& j) {
  try {
    SnapshotRecord r;
    r.instance_id = j.at("instance_id").get<std::string>();
    r.name = j.at("name").get<std::string>();
    r.parent = j.value("parent", "");
    r.created_at = j.value("created_at", int64_t{0});
    r.memory = j.value("memory", false);
    for (const Json& d : j.value("disks", Json::array()))
      r.disks.push_back({d.value("disk", ""), d.value("virtual_size", 0ull),
                         d.value("vm_state_size", 0ull)});
    return r;
  } catch (const std::exception& e) {
    return Err(ErrorCode::kInternal,
               std::string("stored snapshot record is damaged: ") + e.what());
  }
}

std::vector<SnapshotRecord> ReparentChildren(std::vector<SnapshotRecord>& all,
                                             const SnapshotRecord& removed) {
  std::vector<SnapshotRecord> changed;
  for (auto& r : all) {
    if (r.name == removed.name || r.parent != removed.name) continue;
    r.parent = removed.parent;
    changed.push_back(r);
  }
  all.erase(std::remove_if(all.begin(), all.end(),
                           [&](const SnapshotRecord& r) {
                             return r.name == removed.name;
                           }),
            all.end());
  return changed;
}

Result<std::vector<SnapshotRecord>> ListSnapshotRecords(
    Store* store, const std::string& instance_id) {
  ASSIGN_OR_RETURN(std::vector<Json> docs, store->ListObjects(kKind));
  std::vector<SnapshotRecord> out;
  for (const Json& d : docs) {
    if (d.value("instance_id", "") != instance_id) continue;
    ASSIGN_OR_RETURN(SnapshotRecord r, SnapshotRecordFromJson(d));
    out.push_back(std::move(r));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created_at < b.created_at;
  });
  return out;
}

Result<std::string> CurrentSnapshot(Store* store,
                                    const std::string& instance_id) {
  auto head = store->GetObject(kHeadKind, instance_id);
  if (!head) {
    if (head.error().code() == ErrorCode::kNotFound) return std::string();
    return tl::unexpected(head.error());
  }
  return head->value("current", "");
}

Status SetCurrentSnapshot(Store* store, const std::string& instance_id,
                          const std::string& name) {
  Json doc = {{"current", name}};
  auto st = store->UpdateObject(kHeadKind, instance_id, doc);
  if (!st && st.error().code() == ErrorCode::kNotFound)
    return store->CreateObject(kHeadKind, instance_id, doc);
  return st;
}

Status DeleteSnapshotRecords(Store* store, const std::string& instance_id) {
  ASSIGN_OR_RETURN(auto records, ListSnapshotRecords(store, instance_id));
  for (const auto& r : records) {
    auto st = store->DeleteObject(kKind, SnapshotKey(instance_id, r.name));
    if (!st && st.error().code() != ErrorCode::kNotFound) return st;
  }
  auto st = store->DeleteObject(kHeadKind, instance_id);
  if (!st && st.error().code() != ErrorCode::kNotFound) return st;
  return Ok();
}

}  // namespace vireo
