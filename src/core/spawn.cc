#include "core/spawn.h"

#include <signal.h>
#include <spawn.h>

#include <string_view>

extern char** environ;

namespace sidecar::core {

pid_t spawn_process(const SpawnSpec& spec, int& spawn_errno) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const std::string_view key = kv.substr(0, kv.find('='));
    bool drop = false;
    for (const auto& u : spec.unset) drop = drop || key == u;
    for (const auto& [k, v] : spec.env) drop = drop || key == k;
    if (!drop) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : spec.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings(spec.argv);
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  if (argv_strings.empty()) {
    spawn_errno = EINVAL;
    return -1;
  }

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (spec.stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, spec.stdin_fd, 0);
  if (spec.stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, spec.stdout_fd, 1);
  if (spec.stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, spec.stderr_fd, 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, spec.cwd.c_str());
  if (spec.close_other_fds) posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  const char* program = spec.program.empty() ? argv[0] : spec.program.c_str();
  spawn_errno = spec.search_path
                    ? posix_spawnp(&pid, program, &actions, &attr, argv.data(), envp.data())
                    : posix_spawn(&pid, program, &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return spawn_errno == 0 ? pid : -1;
}

}  // namespace sidecar::core
