// Runs a command (git, a hook) as a child process with a hard deadline, its
// output captured, in its own process group, killable from another thread.
//
// Why not module::Host::run: the main loop reaps every child on SIGCHLD with
// waitpid(-1), and it stops running before Module::stop(). So the child is
// created with clone(2) with no exit signal and CLONE_PIDFD: such a "clone
// child" is invisible to waitpid(-1) without __WCLONE (waitpid(2)), the main
// loop never sees or reaps it, and this thread waits for its pidfd and reaps
// it itself with wait4(__WCLONE), also after the main loop has stopped. The
// child's own children (git-remote-http, ssh, index-pack) are ordinary
// children of the child, in its process group.
//
// The deadline (and Canceller::cancel) kill the whole process group with
// SIGKILL, so nothing the command started survives it. Between clone and
// exec the child calls raw system calls only (no allocation, no locks: the
// parent has other threads).
//
// Needs Linux >= 5.3 (pidfd); on older kernels it falls back to polling
// waitpid(WNOHANG | __WCLONE) every 20 ms.
//
// Thread safety: run_child may be called from any thread; a Canceller is
// shared by the thread that runs children and the one that cancels them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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

struct Command {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in PATH
  std::string cwd;                // "": the current directory
  // Set in the child's environment (the process's own, with these added or
  // replaced, and `unset` removed).
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> unset;
  std::string input;  // written to its stdin (then closed); empty: stdin is /dev/null
  mode_t umask = 022;
  std::chrono::steady_clock::time_point deadline;  // killed (SIGKILL to the group) at
  size_t max_stdout = 16 << 20;                    // bytes kept of stdout (the rest is read and dropped)
  size_t max_stderr = 64 << 10;                    // bytes kept of stderr (the last ones)
};

struct ChildResult {
  enum class End { kExited, kSignaled, kTimedOut, kCancelled, kNotStarted };
  End end = End::kNotStarted;
  int exit_code = -1;  // kExited
  int signal = 0;      // kSignaled
  std::string out;     // stdout
  std::string err;     // stderr (its end, when longer than max_stderr); kNotStarted: why
  uint64_t max_rss_bytes = 0;  // the child's peak resident memory, its reaped children included
  bool ok() const { return end == End::kExited && exit_code == 0; }
  // "exit code 1", "killed by signal 9", "timed out", ...
  std::string describe() const;
};

// Runs `command` and waits for it (blocks the calling thread until it ends,
// the deadline passes, or `canceller` fires; never longer than the deadline
// plus the time to reap a killed child). Never throws for the child's
// failure; std::bad_alloc only.
ChildResult run_child(const Command& command, Canceller* canceller = nullptr);

}  // namespace sidecar::sync
