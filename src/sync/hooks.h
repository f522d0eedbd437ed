// The hooks of one sync (`notify[]`), decoupled from syncing: a thread of
// their own that tells the app about the live revision, so that a slow or
// failing hook never delays the next fetch (docs/sync.md "Hooks").
//
// Each hook always delivers the latest revision: a new one replaces what
// was pending (the app needs the newest, not every one). A failed attempt
// is retried after a backoff (0.5 s, doubling, at most the hook's
// max_interval) until it succeeds, a newer revision replaces it, or its
// `retries` are used up. Hooks run in order when they are due together;
// each retries on its own, so one failing hook does not hold back the
// others. What each hook last succeeded for is kept in root/
// .sidecar-notified ("<hook id> <revision>" lines; the id is a hash of the
// hook's settings), so after a restart a hook runs again for the live
// revision when it missed it, and a hook added to the config runs for it.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "module/module.h"
#include "sync/child_process.h"
#include "sync/config.h"

namespace sidecar::sync {

struct HookStatus {
  std::string kind;      // "signal", "webhook", "exec"
  std::string target;    // "SIGHUP", the URL, the command
  std::string notified;  // the last revision it succeeded for
  std::string pending;   // the revision it has yet to deliver, "" when none
  uint64_t successes = 0, failures = 0;
  uint32_t consecutive_failures = 0;
  std::string last_error;
};

// A stable id for a hook's settings (16 hex digits).
std::string hook_id(const HookConfig& hook);

class HookQueue : public std::enable_shared_from_this<HookQueue> {
 public:
  using Clock = std::chrono::steady_clock;

  // `root` holds the revisions (the exec hooks run in root/.revisions/<id>)
  // and the .sidecar-notified file.
  HookQueue(const SyncConfig& config, module::Host& host);
  // (children are reaped through the host, module::Host::spawn_child)
  ~HookQueue();

  // Starts the thread; every hook that has not told the app about `live`
  // (when not "") does so.
  void start(const std::string& live);
  // A new revision is live.
  void deliver(const std::string& revision);
  // For `once`: runs, on the calling thread, every hook that has not told
  // the app about `revision`, each tried 1 + retries times (retries: 0
  // unless set). True when all of them succeeded.
  bool run_now(const std::string& revision);
  // Stops: wakes the thread, kills the command or aborts the webhook in
  // progress. Then wait() joins the thread, or leaves it at `deadline`.
  void request_stop();
  void wait(Clock::time_point deadline);
  std::vector<HookStatus> status() const;

 private:
  struct State {
    std::string id;
    std::string notified;
    std::string wanted;
    std::string given_up;  // retries used up for this revision
    Clock::time_point next_attempt{};
    HookStatus status;
  };
  void run();
  bool attempt(size_t index, const std::string& revision, std::string& error);
  void record(size_t index, const std::string& revision, bool ok, const std::string& error);
  void save_locked();

  const SyncConfig config_;
  module::Host& host_;
  HostReaper reaper_;
  const std::string marker_file_;
  Canceller canceller_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool changed_ = false;
  bool finished_ = false;
  std::vector<State> hooks_;
  std::thread thread_;
};

}  // namespace sidecar::sync
