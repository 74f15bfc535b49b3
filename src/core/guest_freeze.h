#pragma once

// Quiescing a running guest's filesystems around a backup's point in time,
// through qemu-guest-agent (guest-fsfreeze-freeze / -thaw). Best effort: a
// guest without an agent is backed up crash-consistent, and says so.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/vm_engine.h"

namespace vireo {

class GuestFreeze {
 public:
  struct Options {
    // guest-fsfreeze-freeze flushes every filesystem first; a busy guest may
    // take a while.
    std::chrono::milliseconds freeze_timeout{10000};
    // Longest a guest stays frozen: past this the watchdog thaws it even if
    // the caller has not (applications in the guest block on writes).
    std::chrono::milliseconds max_frozen{10000};
    std::chrono::milliseconds thaw_timeout{5000};
  };

  // Asks the agent to freeze the guest's filesystems. Never fails: without
  // an (answering) agent, nothing is frozen and describe() says why. Costs
  // about the agent's sync timeout (~1.5 s) when no agent answers.
  static std::unique_ptr<GuestFreeze> Begin(VmEngine* engine,
                                            const std::string& vm);
  static std::unique_ptr<GuestFreeze> Begin(VmEngine* engine,
                                            const std::string& vm,
                                            Options options);
  ~GuestFreeze();  // thaws
  GuestFreeze(const GuestFreeze&) = delete;
  GuestFreeze& operator=(const GuestFreeze&) = delete;

  // Thaws now (idempotent); call it right after the point in time.
  void Thaw();
  // True when the agent froze the filesystems.
  bool frozen() const { return froze_; }
  int filesystems() const { return filesystems_; }
  // For the backup note: "filesystem-consistent (guest agent froze 2
  // filesystems)" or "crash-consistent (no guest agent: <why>)". Call after
  // Thaw(), so a failed thaw is mentioned too.
  std::string describe() const;

 private:
  GuestFreeze(VmEngine* engine, std::string vm, Options options)
      : engine_(engine), vm_(std::move(vm)), options_(options) {}
  void Freeze();
  void ThawLocked();  // mu_ held
  void Watchdog(std::chrono::steady_clock::time_point deadline);

  VmEngine* engine_;
  std::string vm_;
  Options options_;

  // Written by Freeze() before the watchdog starts or by the caller's thread
  // only; the watchdog reads freeze_sent_ alone.
  bool freeze_sent_ = false;     // the guest may be frozen: thaw is due
  bool froze_ = false;           // the agent answered the freeze
  int filesystems_ = 0;          // ... and froze this many
  bool already_frozen_ = false;  // frozen by someone else: leave it
  std::string crash_reason_;     // why the backup is crash-consistent

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool thawed_ = false;           // guarded by mu_
  bool watchdog_thawed_ = false;  // guarded by mu_
  std::string thaw_error_;        // guarded by mu_
  std::thread watchdog_;
};

}  // namespace vireo
