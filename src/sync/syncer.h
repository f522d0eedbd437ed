// One sync entry: a thread that keeps root/<link> in step with its source
// (git or HTTP), every `period` and whenever triggered (POST /sync, SIGUSR2),
// then tells the app (hooks).
//
// After a failure the next attempt waits an exponential backoff with jitter
// (5s doubling, up to max(period, 5 min)) instead of the period; the live
// revision stays. Hooks run in order after a new revision is live, each
// retried with backoff; the last revision all hooks succeeded for is kept in
// root/.sidecar-notified, and the hooks run again at start when the live
// revision differs (the app may have missed them).
//
// Thread safety: trigger(), status() and ready() from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "stats/stats.h"

namespace sidecar::sync {

// What a sync needs from the process it runs in.
class Host {
 public:
  virtual ~Host() = default;
  // Sends `sig` to the supervised app, if any. Thread-safe.
  virtual void signal_app(int sig) = 0;
  // Runs `argv` in `cwd` with `env` added, waits up to `timeout`; returns
  // the exit code, or nothing (could not start, timed out and killed).
  // Thread-safe; blocks the caller.
  virtual std::optional<int> run(const std::vector<std::string>& argv, const std::string& cwd,
                                 const std::vector<std::pair<std::string, std::string>>& env,
                                 std::chrono::milliseconds timeout) = 0;
  // A sync with `once: true` finished.
  virtual void once_done() = 0;
};

struct SyncStatus {
  std::string name;
  std::string revision;  // live; "" before the first success
  std::string last_error;
  double last_success_time = 0;  // seconds since the epoch; 0: never
  uint64_t successes = 0, unchanged = 0, failures = 0;
  uint32_t consecutive_failures = 0;
  bool done_once = false;  // once: true and finished
  bool ready = false;
};

class Syncer {
 public:
  Syncer(config::Sync config, Host& host);
  ~Syncer();  // stops the thread (an operation in progress finishes first)

  void start();
  // Syncs now (or right after the sync in progress).
  void trigger();
  SyncStatus status() const;
  bool ready() const;
  const config::Sync& config() const { return config_; }
  // Seconds per sync, for sidecar_sync_duration_seconds.
  const stats::Histogram& durations() const { return durations_; }

 private:
  enum class Result { kUpdated, kUnchanged };
  void run();
  Result sync_once();
  void notify(const std::string& revision);
  bool run_hook(const config::SyncHook& hook, const std::string& revision);
  void wait_for(std::chrono::milliseconds delay);

  const config::Sync config_;
  Host& host_;
  stats::Histogram durations_;
  struct Impl;
  std::unique_ptr<Impl> impl_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool triggered_ = false;
  bool stop_ = false;
  SyncStatus status_;
  std::thread thread_;
};

}  // namespace sidecar::sync
