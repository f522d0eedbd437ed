// Starting a child process the way a supervisor should: posix_spawn (no
// fork of a large, threaded process), the child in a process group of its
// own (so that a signal to -pid reaches its whole tree), with the default
// signal dispositions and an empty signal mask (the sidecar ignores SIGPIPE
// and blocks the signals it handles; a child must not inherit that).
//
// Used by the supervisor (the app) and by sync (git, hooks).
//
// Thread safety: spawn_process() may be called from any thread; it reads
// `environ` (do not setenv() concurrently).
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace sidecar::core {

struct SpawnSpec {
  // argv[0] is the program; with search_path it is looked up in PATH
  // (posix_spawnp), otherwise `program` (if set) or argv[0] is executed as is.
  std::vector<std::string> argv;
  std::string program;
  bool search_path = false;
  // The environment: ours, less the `unset` names and the names in `env`,
  // plus `env` (KEY, value).
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::string> unset;
  std::string cwd;  // empty: ours
  // Descriptors the child gets as 0, 1, 2; -1 keeps ours.
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
  // Close every other descriptor >= 3 in the child (for helpers; the app
  // keeps what it inherits without CLOEXEC, as under a shell).
  bool close_other_fds = false;
};

// Starts the child. Returns its pid, or -1 with `spawn_errno` set (as
// posix_spawn reports it: ENOENT, EACCES...).
pid_t spawn_process(const SpawnSpec& spec, int& spawn_errno);

}  // namespace sidecar::core
