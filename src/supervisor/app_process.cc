#include "supervisor/app_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "core/spawn.h"

namespace sidecar::supervisor {

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

AppProcess::AppProcess(const std::vector<std::string>& argv,
                       const std::vector<std::pair<std::string, std::string>>& extra_env,
                       const std::string& cwd, int stdout_fd, int stderr_fd) {
  if (argv.empty()) throw std::system_error(EINVAL, std::generic_category(), "empty app command");
  core::SpawnSpec spec;
  spec.argv = argv;
  spec.search_path = true;
  spec.env = extra_env;
  spec.cwd = cwd;
  spec.stdout_fd = stdout_fd;
  spec.stderr_fd = stderr_fd;
  int rc = 0;
  const pid_t pid = core::spawn_process(spec, rc);
  if (pid < 0) {
    throw std::system_error(rc, std::generic_category(), fmt::format("cannot start '{}'", argv[0]));
  }
  pid_ = pid;
}

void AppProcess::signal(int sig) const {
  if (pid_ > 0 && !exit_code_) ::kill(-pid_, sig);
}

bool AppProcess::on_reaped(pid_t pid, int wait_status) {
  if (pid != pid_) return false;
  exit_code_ = exit_code_of(wait_status);
  return true;
}

}  // namespace sidecar::supervisor
