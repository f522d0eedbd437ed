// The access log writer: one thread that takes entries from every worker's
// ring, formats them (JSON object or text line) and writes them in batches,
// so the data path never formats a line or waits for a disk.
//
// A worker that finds its ring full drops the entry and counts it
// (sidecar_access_log_dropped_total); a failed write is counted too
// (sidecar_access_log_write_errors_total) and reported in the log.
// Thread safety: ring(i) belongs to worker i; wake(), reopen() and the
// counters may be used from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "accesslog/entry.h"
#include "accesslog/ring.h"
#include "config/config.h"

namespace sidecar::accesslog {

// Renders entries in a configured format. Reentrant (const).
class Formatter {
 public:
  explicit Formatter(const config::AccessLog& config);
  // Appends one line, newline included.
  void format(const Entry& e, std::string& out) const;

 private:
  void render(const config::LogToken& t, const Entry& e, std::string& out, bool json) const;
  config::AccessLog config_;
};

class Writer {
 public:
  // Opens the output (throws std::system_error naming the path) and starts
  // the thread, with one ring of config.buffer_size bytes per worker.
  Writer(const config::AccessLog& config, unsigned workers);
  ~Writer();  // writes what is queued, then stops

  Ring& ring(unsigned worker) { return *rings_[worker]; }
  // Asks the thread to run now (a ring is filling up).
  void wake();
  // Reopens the file before the next write (logrotate's SIGUSR1).
  void reopen();
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  const config::AccessLog& config() const { return config_; }

 private:
  void run();
  void drain();
  void flush();
  void open_output();

  const config::AccessLog config_;
  const Formatter formatter_;
  std::vector<std::unique_ptr<Ring>> rings_;
  int fd_ = -1;
  bool own_fd_ = false;
  std::string out_;
  Entry entry_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> write_errors_{0};
  std::thread thread_;
};

}  // namespace sidecar::accesslog
