#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/events.h"

namespace vireo {

enum class OperationStatus { kRunning, kSuccess, kFailure };
std::string_view ToString(OperationStatus status);

// A snapshot of a long-running action (Incus "operation").
struct Operation {
  std::string id;
  std::string description;  // "Starting instance"
  OperationStatus status = OperationStatus::kRunning;
  std::string error;                // set on kFailure
  std::string error_code;           // stable ErrorCode name on kFailure
  Json resources = Json::object();  // {"instances":["/1.0/instances/x"]}
  Json metadata = Json::object();   // result on kSuccess; progress or
                                    // connection details while running
  std::string op_class = "task";    // "task" or "websocket" (Incus classes)
  int64_t created_at = 0;
  int64_t updated_at = 0;
};
Json ToJson(const Operation& op);

// Runs operations on their own threads and keeps their outcome for a while.
class OperationManager {
 public:
  using Work = std::function<Result<Json>()>;
  explicit OperationManager(EventBus* events) : events_(events) {}
  ~OperationManager();  // waits for running operations

  // Starts work on a new thread; returns the operation as it is now.
  Operation Start(std::string description, Json resources, Work work);
  // Same, with initial metadata and an operation class ("websocket" for
  // console relays the client connects to).
  Operation Start(std::string description, Json resources, Json metadata,
                  std::string op_class, Work work);
  // Merges `patch` into a running operation's metadata and publishes it.
  void SetMetadata(const std::string& id, const Json& patch);
  // Progress of a long step, as metadata.progress {stage, done, total,
  // percent}; rate-limited event publication (at most every 250 ms).
  void SetProgress(const std::string& id, const std::string& stage,
                   uint64_t done, uint64_t total);
  // The id of the operation whose work runs on the calling thread, or "".
  static std::string CurrentId();
  Result<Operation> Get(const std::string& id) const;
  std::vector<Operation> List() const;
  // Waits until the operation finishes or the timeout passes; returns its
  // state.
  Result<Operation> Wait(const std::string& id,
                         std::chrono::milliseconds timeout) const;

 private:
  void Finish(const std::string& id, Result<Json> result);
  void Prune();  // forgets finished operations older than a retention period
  EventBus* events_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, Operation> ops_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_progress_;
  int workers_ = 0;  // operation threads still running
};

}  // namespace vireo
