// Runs a command (git, a hook) as a child process with a hard deadline, its
// output captured, in its own process group, killable from another thread.
//
// Why not module::Host::run: it runs on the main loop, which stops before
// Module::stop(), and it captures nothing. The child is started with
// posix_spawn through a Reaper (module::Host::spawn_child in sidecar): the
// process's reaper (waitpid(-1) on SIGCHLD) then keeps this child's exit
// for us instead of dropping it, and reap_child works also after the main
// loop has ended. Its exit is seen through a pidfd (Linux >= 5.3; polled
// every 20 ms without one).
//
// The deadline (and Canceller::cancel) kill the whole process group with
// SIGKILL, so nothing the command started (git-remote-http, ssh,
// index-pack) survives it.
//
// Thread safety: run_child may be called from any thread; a Canceller is
// shared by the thread that runs children and the one that cancels them.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sidecar::module {
class Host;
}

namespace sidecar::sync {

// Lets another thread kill the child a thread is running (Module::stop).
class Canceller {
 public:
  // Kills the running child's process group; every later run_child with
  // this Canceller fails at once (End::kCancelled). Idempotent.
  void cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  friend class ChildRegistration;
  std::mutex mutex_;
  pid_t running_ = 0;  // the process group of the child running now, 0: none
  std::atomic<bool> cancelled_{false};
};

// Who reaps the children: the process's reaper (module::Host), or, where
// nothing else reaps (unit tests), DirectReaper.
class Reaper {
 public:
  virtual ~Reaper() = default;
  // Runs `spawn` (which starts a child and returns its pid, or -1) so that
  // the child's exit is kept for try_reap.
  virtual pid_t spawn(const std::function<pid_t()>& spawn) = 0;
  // The child's wait status and usage once it has exited; false while it
  // runs. Never blocks.
  virtual bool try_reap(pid_t pid, int& wait_status, rusage& usage) = 0;
};

// Reaps with wait4(pid): for a process where nothing calls waitpid(-1).
class DirectReaper final : public Reaper {
 public:
  pid_t spawn(const std::function<pid_t()>& spawn) override { return spawn(); }
  bool try_reap(pid_t pid, int& wait_status, rusage& usage) override;
};

// Reaps through the process's reaper (module::Host::spawn_child/reap_child).
class HostReaper final : public Reaper {
 public:
  explicit HostReaper(module::Host& host) : host_(host) {}
  pid_t spawn(const std::function<pid_t()>& spawn) override;
  bool try_reap(pid_t pid, int& wait_status, rusage& usage) override;

 private:
  module::Host& host_;
};

struct Command {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in PATH
  std::string cwd;                // "": the current directory
  // Set in the child's environment (the process's own, with these added or
  // replaced, and `unset` removed).
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> unset;
  std::string input;  // written to its stdin (then closed); empty: stdin is /dev/null
  std::chrono::steady_clock::time_point deadline;  // killed (SIGKILL to the group) at
  size_t max_stdout = 16 << 20;  // bytes kept of stdout (the rest is read and dropped)
  size_t max_stderr = 64 << 10;  // bytes kept of stderr (the last ones)
};

struct ChildResult {
  enum class End { kExited, kSignaled, kTimedOut, kCancelled, kNotStarted };
  End end = End::kNotStarted;
  int exit_code = -1;          // kExited
  int signal = 0;              // kSignaled
  std::string out;             // stdout
  std::string err;             // stderr (its end, when longer than max_stderr); kNotStarted: why
  uint64_t max_rss_bytes = 0;  // the child's peak resident memory, its reaped children included
  bool ok() const { return end == End::kExited && exit_code == 0; }
  // "exit code 1", "killed by signal 9", "timed out", ...
  std::string describe() const;
};

// Runs `command` and waits for it (blocks the calling thread until it ends,
// the deadline passes, or `canceller` fires; never longer than the deadline
// plus the time to reap a killed child). Never throws for the child's
// failure; std::bad_alloc only.
ChildResult run_child(const Command& command, Reaper& reaper, Canceller* canceller = nullptr);

}  // namespace sidecar::sync
