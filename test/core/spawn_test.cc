#include "core/spawn.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace sidecar::core {
namespace {

// Runs `script` under /bin/sh with stdout into a pipe; returns what it wrote
// and its exit status.
std::pair<std::string, int> run(SpawnSpec spec) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  spec.stdout_fd = fds[1];
  int err = 0;
  const pid_t pid = spawn_process(spec, err);
  ::close(fds[1]);
  EXPECT_GT(pid, 0) << err;
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST(SpawnTest, EnvironmentIsOursLessUnsetPlusOverrides) {
  ::setenv("SPAWN_TEST_KEEP", "kept", 1);
  ::setenv("SPAWN_TEST_DROP", "dropped", 1);
  ::setenv("SPAWN_TEST_OVER", "old", 1);
  SpawnSpec spec;
  spec.argv = {"sh", "-c", "echo \"$SPAWN_TEST_KEEP,${SPAWN_TEST_DROP-unset},$SPAWN_TEST_OVER\""};
  spec.search_path = true;
  spec.unset = {"SPAWN_TEST_DROP"};
  spec.env = {{"SPAWN_TEST_OVER", "new"}};
  EXPECT_EQ(run(spec), std::make_pair(std::string("kept,unset,new\n"), 0));
}

TEST(SpawnTest, OwnProcessGroupCwdAndDefaultSignals) {
  SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c",
               "pwd; [ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" ] && echo leader; "
               "grep -E 'SigBlk|SigIgn' /proc/self/status"};
  spec.cwd = "/tmp";
  // As in the sidecar: SIGPIPE ignored, SIGUSR1 blocked; the child has neither.
  sigset_t usr1, old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old);
  const auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
  const auto [out, code] = run(spec);
  ::signal(SIGPIPE, old_pipe);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("/tmp\n"), std::string::npos) << out;
  EXPECT_NE(out.find("leader\n"), std::string::npos) << out;
  EXPECT_NE(out.find("SigBlk:\t0000000000000000"), std::string::npos) << out;
  EXPECT_EQ(out.find("SigIgn:\t0000000000001000"), std::string::npos) << out;  // SIGPIPE
}

TEST(SpawnTest, CloseOtherFds) {
  const int fd = ::open("/dev/null", O_RDONLY);  // inherited: no CLOEXEC
  ASSERT_GE(fd, 3);
  SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c", "[ -e /proc/self/fd/" + std::to_string(fd) + " ] && echo open"};
  EXPECT_EQ(run(spec).first, "open\n");
  spec.close_other_fds = true;
  EXPECT_EQ(run(spec).first, "");
  ::close(fd);
}

TEST(SpawnTest, MissingProgramIsAnErrno) {
  SpawnSpec spec;
  spec.argv = {"/nonexistent/program"};
  int err = 0;
  EXPECT_EQ(spawn_process(spec, err), -1);
  EXPECT_EQ(err, ENOENT);
  spec.argv.clear();
  EXPECT_EQ(spawn_process(spec, err), -1);
  EXPECT_EQ(err, EINVAL);
}

}  // namespace
}  // namespace sidecar::core
