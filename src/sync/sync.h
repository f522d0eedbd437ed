// The sync subsystem as the rest of the process sees it.
//
// The implementation (libgit2, libcurl, libarchive and their dependencies)
// lives in a module, libsidecar-sync.so next to the sidecar binary, loaded
// the first time a sync is created: linked into the binary, those libraries
// would add about 8 MiB of resident memory to every sidecar, syncing or not.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

// One sync entry (see syncer.h for what it does). Thread safety: trigger(),
// status() and ready() from any thread.
class Sync {
 public:
  virtual ~Sync() = default;
  virtual void start() = 0;
  // Syncs now (or right after the sync in progress).
  virtual void trigger() = 0;
  virtual SyncStatus status() const = 0;
  virtual bool ready() const = 0;
  virtual const config::Sync& config() const = 0;
  // Seconds per sync, for sidecar_sync_duration_seconds.
  virtual const stats::Histogram& durations() const = 0;
};

// Creates the sync for `config`, loading the module on first use. Throws
// std::runtime_error when the module cannot be loaded. Call on the main thread.
std::unique_ptr<Sync> create(const config::Sync& config, Host& host);

// The module's entry point (C linkage, looked up by name).
extern "C" using CreateFn = Sync * (*)(const config::Sync& config, Host& host);
inline constexpr const char* kCreateSymbol = "sidecar_sync_create";

}  // namespace sidecar::sync
