#include "core/operations.h"

#include <ctime>

#include "common/random.h"

namespace vireo {

namespace {
constexpr int64_t kRetentionSeconds = 3600;
thread_local std::string current_operation_id;

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

std::string NewId() {
  // A random UUIDv4.
  unsigned char b[16];
  RandomBytes(b, sizeof(b));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(kHex[b[i] >> 4]);
    s.push_back(kHex[b[i] & 15]);
  }
  return s;
}
}  // namespace

std::string_view ToString(OperationStatus status) {
  switch (status) {
    case OperationStatus::kRunning:
      return "Running";
    case OperationStatus::kSuccess:
      return "Success";
    case OperationStatus::kFailure:
      return "Failure";
  }
  return "Failure";
}

Json ToJson(const Operation& op) {
  int code = op.status == OperationStatus::kRunning   ? 103
             : op.status == OperationStatus::kSuccess ? 200
                                                      : 400;
  return {{"id", op.id},
          {"description", op.description},
          {"status", ToString(op.status)},
          {"status_code", code},
          {"err", op.error},
          {"code", op.error_code},
          {"resources", op.resources},
          {"metadata", op.metadata},
          {"class", op.op_class},
          {"created_at", op.created_at},
          {"updated_at", op.updated_at}};
}

OperationManager::~OperationManager() {
  // Operation threads are detached; wait until the last one has left Finish.
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return workers_ == 0; });
}

Operation OperationManager::Start(std::string description, Json resources,
                                  Work work) {
  return Start(std::move(description), std::move(resources), Json::object(),
               "task", std::move(work));
}

Operation OperationManager::Start(std::string description, Json resources,
                                  Json metadata, std::string op_class,
                                  Work work) {
  Operation op;
  op.id = NewId();
  op.description = std::move(description);
  op.resources = std::move(resources);
  op.metadata = std::move(metadata);
  op.op_class = std::move(op_class);
  op.created_at = op.updated_at = Now();
  {
    std::lock_guard lock(mu_);
    Prune();
    ops_[op.id] = op;
    ++workers_;
    std::thread([this, id = op.id, work = std::move(work)] {
      current_operation_id = id;
      Finish(id, work());
    }).detach();
  }
  if (events_) events_->Publish("operation", ToJson(op));
  return op;
}

void OperationManager::Finish(const std::string& id, Result<Json> result) {
  Operation snapshot;
  {
    std::lock_guard lock(mu_);
    auto it = ops_.find(id);
    if (it == ops_.end()) {
      --workers_;
      cv_.notify_all();
      return;
    }
    Operation& op = it->second;
    if (result) {
      op.status = OperationStatus::kSuccess;
      op.metadata = std::move(*result);
    } else {
      op.status = OperationStatus::kFailure;
      op.error = result.error().ToString();
      op.error_code = std::string(ErrorCodeName(result.error().code()));
    }
    op.updated_at = Now();
    snapshot = op;
    last_progress_.erase(id);
  }
  if (events_) events_->Publish("operation", ToJson(snapshot));
  std::lock_guard lock(mu_);
  --workers_;
  cv_.notify_all();
}

std::string OperationManager::CurrentId() { return current_operation_id; }

void OperationManager::SetMetadata(const std::string& id, const Json& patch) {
  Operation snapshot;
  {
    std::lock_guard lock(mu_);
    auto it = ops_.find(id);
    if (it == ops_.end() || it->second.status != OperationStatus::kRunning)
      return;
    if (!it->second.metadata.is_object()) it->second.metadata = Json::object();
    for (const auto& [k, v] : patch.items()) it->second.metadata[k] = v;
    it->second.updated_at = Now();
    snapshot = it->second;
  }
  if (events_) events_->Publish("operation", ToJson(snapshot));
}

void OperationManager::SetProgress(const std::string& id,
                                   const std::string& stage, uint64_t done,
                                   uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    auto& last = last_progress_[id];
    // Always publish the final step; otherwise at most 4 updates a second.
    if (done < total && now - last < std::chrono::milliseconds(250)) return;
    last = now;
  }
  int percent = total ? static_cast<int>(done * 100 / total) : 0;
  SetMetadata(id, {{"progress",
                    {{"stage", stage},
                     {"done", done},
                     {"total", total},
                     {"percent", percent}}}});
}

void OperationManager::Prune() {
  int64_t cutoff = Now() - kRetentionSeconds;
  std::erase_if(ops_, [&](const auto& kv) {
    return kv.second.status != OperationStatus::kRunning &&
           kv.second.updated_at < cutoff;
  });
}

Result<Operation> OperationManager::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = ops_.find(id);
  if (it == ops_.end())
    return Err(ErrorCode::kNotFound, "operation '" + id + "' not found");
  return it->second;
}

std::vector<Operation> OperationManager::List() const {
  std::lock_guard lock(mu_);
  std::vector<Operation> out;
  for (const auto& [id, op] : ops_) out.push_back(op);
  return out;
}

Result<Operation> OperationManager::Wait(
    const std::string& id, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  auto it = ops_.find(id);
  if (it == ops_.end())
    return Err(ErrorCode::kNotFound, "operation '" + id + "' not found");
  cv_.wait_for(lock, timeout, [&] {
    auto i = ops_.find(id);
    return i == ops_.end() || i->second.status != OperationStatus::kRunning;
  });
  it = ops_.find(id);
  if (it == ops_.end())
    return Err(ErrorCode::kNotFound, "operation '" + id + "' not found");
  return it->second;
}

}  // namespace vireo
