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
#include "sync/sync.h"

namespace sidecar::sync {

class Syncer : public Sync {
 public:
  Syncer(config::Sync config, Host& host);
  ~Syncer() override;  // stops the thread (an operation in progress finishes first)

  void start() override;
  void trigger() override;
  SyncStatus status() const override;
  bool ready() const override;
  const config::Sync& config() const override { return config_; }
  const stats::Histogram& durations() const override { return durations_; }

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
