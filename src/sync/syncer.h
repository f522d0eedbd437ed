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

#include "module/module.h"
#include "stats/stats.h"
#include "sync/config.h"

namespace sidecar::sync {

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
  Syncer(SyncConfig config, module::Host& host);
  ~Syncer();  // stops the thread (an operation in progress finishes first)

  void start();
  // Syncs now (or right after the sync in progress).
  void trigger();
  SyncStatus status() const;
  bool ready() const;
  const SyncConfig& config() const { return config_; }
  // Seconds per sync, for sidecar_sync_duration_seconds.
  const stats::Histogram& durations() const { return durations_; }

 private:
  enum class Result { kUpdated, kUnchanged };
  void run();
  Result sync_once();
  void notify(const std::string& revision);
  bool run_hook(const HookConfig& hook, const std::string& revision);
  void wait_for(std::chrono::milliseconds delay);

  const SyncConfig config_;
  module::Host& host_;
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
