// The supervised application process.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sidecar::supervisor {

// The exit code a shell would report for a waitpid() status: the exit
// status, or 128 + the signal number when a signal ended the process.
int exit_code_of(int wait_status);

class AppProcess {
 public:
  // Starts `argv` (argv[0] looked up in PATH) as the leader of a new process
  // group, with this process's environment plus `extra_env` (overriding),
  // default signal dispositions and an empty signal mask. Throws
  // std::system_error when it cannot be started (for example, not found).
  // With `cwd`, it starts there. With `stdout_fd` / `stderr_fd` (>= 0), those
  // become its fd 1 / fd 2 instead of ours.
  AppProcess(const std::vector<std::string>& argv,
             const std::vector<std::pair<std::string, std::string>>& extra_env,
             const std::string& cwd = "", int stdout_fd = -1, int stderr_fd = -1);

  pid_t pid() const { return pid_; }
  bool exited() const { return exit_code_.has_value(); }
  // The exit code once exited (see exit_code_of).
  std::optional<int> exit_code() const { return exit_code_; }

  // Sends `sig` to the app's process group (so its children get it too).
  void signal(int sig) const;
  // Records the app's exit if `pid` is the app; returns true when it was.
  bool on_reaped(pid_t pid, int wait_status);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Reaps every child that has exited (waitpid(-1, WNOHANG) until none is
// left), calling `fn(pid, status)` for each. Safe to call at any time.
template <typename Fn>
void reap_children(Fn&& fn);

}  // namespace sidecar::supervisor

#include <sys/wait.h>

template <typename Fn>
void sidecar::supervisor::reap_children(Fn&& fn) {
  while (true) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    fn(pid, status);
  }
}
