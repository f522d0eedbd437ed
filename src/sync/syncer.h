// One sync entry: a thread that keeps the link in step with its source (git
// or HTTP), every `period` and whenever triggered (POST /sync, SIGUSR2), and
// hands each new revision to its hooks (hooks.h, a thread of their own).
//
// Every sync is bounded by `timeout`: each git command is killed with its
// process group at the deadline (child_process.h), an HTTP transfer is
// aborted. A failure keeps the live revision; the next attempt comes after
// a short backoff (period/10, doubling, at most period, +-10%), so a source
// that is back is used within about one period. Each sync also checks that
// the live tree exists and is the revision the link names, and builds it
// again when it is not.
//
// Thread safety: trigger(), status(), ready() and stop() from any thread.
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
#include "stats/stats.h"
#include "sync/child_process.h"
#include "sync/config.h"
#include "sync/hooks.h"

namespace sidecar::sync {

class Destination;
class GitSource;
class HttpSource;

struct SyncStatus {
  std::string name;
  std::string revision;  // live; "" before the first success
  std::string last_error;
  double last_success_time = 0;  // seconds since the epoch; 0: never
  uint64_t successes = 0, unchanged = 0, repairs = 0, failures = 0;
  uint32_t consecutive_failures = 0;
  uint64_t git_max_rss_bytes = 0;  // the largest git command so far
  bool done_once = false;          // once: true and finished
  bool once_failed = false;        // once: the sync or a hook failed
  bool ready = false;
  std::vector<HookStatus> hooks;
};

class Syncer : public std::enable_shared_from_this<Syncer> {
 public:
  using Clock = std::chrono::steady_clock;

  Syncer(SyncConfig config, module::Host& host);
  ~Syncer();

  void start();
  // Syncs now (or right after the sync in progress).
  void trigger();
  SyncStatus status() const;
  bool ready() const;
  // Stops: kills the git command or hook running and wakes the threads.
  // Then wait() joins them, or leaves them at `deadline` (they hold what
  // they use).
  void request_stop();
  void wait(Clock::time_point deadline);
  const SyncConfig& config() const { return config_; }
  // Seconds per sync, for sidecar_sync_duration_seconds.
  const stats::Histogram& durations() const { return durations_; }

 private:
  enum class Result { kUpdated, kUnchanged, kRepaired };
  void run();
  Result sync_once();
  void publish(const std::string& id, const std::string& live, bool repair);
  void remove_tree(const std::string& dir);
  void wait_for(std::chrono::milliseconds delay);
  bool stopping() const;
  void write_error_file(const std::string& error);

  const SyncConfig config_;
  module::Host& host_;
  HostReaper reaper_;
  stats::Histogram durations_;
  Canceller canceller_;
  std::atomic<bool> stop_flag_{false};  // for libcurl's progress callback
  std::shared_ptr<HookQueue> hooks_;
  std::unique_ptr<Destination> destination_;  // the sync thread's
  std::unique_ptr<GitSource> git_;
  std::unique_ptr<HttpSource> http_;
  bool fetched_ = false;  // this sync brought objects or a new tree

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool triggered_ = false;
  bool stop_ = false;
  bool finished_ = false;
  SyncStatus status_;
  std::thread thread_;
};

}  // namespace sidecar::sync
