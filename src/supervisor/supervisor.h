// Runs the app and keeps it running according to its restart policy.
//
// The app is started in its own process group (see AppProcess) with PORT
// set. When it exits: with `restart: never`, or `on-failure` and code 0, or
// after stop(), `on_exit(code)` is called once and that is the end; otherwise
// it is started again after an exponential backoff (backoff_initial,
// doubling up to backoff_max; back to the start after a run longer than
// 10 * backoff_max). The owner reaps children and passes each to on_reaped.
//
// Thread safety: everything on the main thread's io_context.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.h"
#include "supervisor/app_process.h"
#include "supervisor/output_pump.h"

namespace sidecar::supervisor {

class Supervisor {
 public:
  Supervisor(boost::asio::io_context& io, std::vector<std::string> argv, config::App app,
             std::function<void(int exit_code)> on_exit);

  // Sends the app's stdout and stderr through pipes from its next start
  // on: passed on to ours, and to `fn` (see output_pump.h). Before start().
  void capture_output(OutputFn fn) { capture_ = std::move(fn); }
  // Starts the app. Throws std::system_error when it cannot be started.
  void start();
  // Passes `sig` to the app's process group; nothing when it is not running.
  void forward(int sig);
  // No more restarts from now on (shutdown has begun).
  void hold() { hold_ = true; }
  // Stops the app for good: `sig` to its process group, SIGKILL after
  // stop_timeout; on_exit follows once it has exited. When it is not running
  // (waiting to restart), on_exit is called at once with the last exit code.
  void stop(int sig);
  // Handles a reaped child; true when it was the app.
  bool on_reaped(pid_t pid, int wait_status);

  bool running() const { return process_.has_value() && !process_->exited(); }
  pid_t pid() const { return running() ? process_->pid() : -1; }
  uint64_t restarts() const { return restarts_; }
  std::optional<int> last_exit_code() const { return last_exit_code_; }

 private:
  void spawn();
  void finish(int code);

  boost::asio::io_context& io_;
  std::vector<std::string> argv_;
  config::App app_;
  std::function<void(int)> on_exit_;
  OutputFn capture_;
  std::optional<AppProcess> process_;
  boost::asio::steady_timer restart_timer_;
  boost::asio::steady_timer kill_timer_;
  std::chrono::steady_clock::time_point started_at_;
  std::chrono::milliseconds backoff_{0};
  std::optional<int> last_exit_code_;
  uint64_t restarts_ = 0;
  bool hold_ = false;
  bool stopping_ = false;
  bool finished_ = false;
};

}  // namespace sidecar::supervisor
