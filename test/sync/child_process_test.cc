#include "sync/child_process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace sidecar::sync {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Command sh(const std::string& script, std::chrono::milliseconds timeout = 10s) {
  Command c;
  c.argv = {"sh", "-c", script};
  c.deadline = Clock::now() + timeout;
  return c;
}

// Running (a zombie waiting for its new parent to reap it is not).
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

TEST(ChildProcess, CapturesOutputExitCodeEnvironmentDirectoryAndInput) {
  DirectReaper reaper;
  Command c = sh("echo out; echo err >&2; pwd; echo $FOO; test -z \"$DROPPED\" && cat; exit 3");
  c.cwd = "/";
  c.env = {{"FOO", "bar"}};
  c.unset = {"DROPPED"};
  c.input = "from stdin\n";
  ::setenv("DROPPED", "x", 1);
  const ChildResult r = run_child(c, reaper);
  ::unsetenv("DROPPED");
  EXPECT_EQ(r.end, ChildResult::End::kExited);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n/\nbar\nfrom stdin\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_GT(r.max_rss_bytes, 0u);
  EXPECT_EQ(r.describe(), "exit code 3");
}

TEST(ChildProcess, TheDeadlineKillsTheWholeProcessGroup) {
  DirectReaper reaper;
  // A grandchild in the background writes its pid; both sleep far past the deadline.
  char path[] = "/tmp/sidecar-child-test-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const auto t0 = Clock::now();
  const ChildResult r =
      run_child(sh(std::string("sleep 30 & echo $! > ") + path + "; sleep 30", 300ms), reaper);
  EXPECT_EQ(r.end, ChildResult::End::kTimedOut);
  EXPECT_LT(Clock::now() - t0, 20s);  // a hang would be 30 s
  std::ifstream in(path);
  pid_t grandchild = 0;
  in >> grandchild;
  ::unlink(path);
  ASSERT_GT(grandchild, 0);
  // Killed with the group (and reaped by init or this process's subreaper).
  for (int i = 0; i < 200 && alive(grandchild); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(alive(grandchild));
}

TEST(ChildProcess, CancelKillsTheRunningChildAndEveryLaterOne) {
  DirectReaper reaper;
  Canceller canceller;
  std::thread stopper([&] {
    std::this_thread::sleep_for(200ms);
    canceller.cancel();
  });
  const ChildResult r = run_child(sh("sleep 30", 60s), reaper, &canceller);
  stopper.join();
  EXPECT_EQ(r.end, ChildResult::End::kCancelled);
  const ChildResult later = run_child(sh("true"), reaper, &canceller);
  EXPECT_EQ(later.end, ChildResult::End::kCancelled);
}

TEST(ChildProcess, AProgramThatIsNotThereDoesNotStart) {
  DirectReaper reaper;
  Command c;
  c.argv = {"sidecar-no-such-program"};
  c.deadline = Clock::now() + 5s;
  const ChildResult r = run_child(c, reaper);
  EXPECT_EQ(r.end, ChildResult::End::kNotStarted);
  EXPECT_NE(r.err.find("not found"), std::string::npos);
  c.argv = {"true"};
  c.cwd = "/nonexistent-directory";
  EXPECT_EQ(run_child(c, reaper).end, ChildResult::End::kNotStarted);
}

TEST(ChildProcess, KeepsTheEndOfALongStderrAndTheStartOfStdout) {
  DirectReaper reaper;
  Command c = sh("i=0; while [ $i -lt 2000 ]; do echo line$i; echo eline$i >&2; i=$((i+1)); done");
  c.max_stdout = 100;
  c.max_stderr = 100;
  const ChildResult r = run_child(c, reaper);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out.size(), 100u);
  EXPECT_TRUE(r.out.starts_with("line0\n"));
  EXPECT_EQ(r.err.size(), 100u);
  EXPECT_TRUE(r.err.ends_with("eline1999\n"));
}

TEST(ChildProcess, AChildThatDoesNotReadItsInputDoesNotBlockOrKill) {
  DirectReaper reaper;
  Command c = sh("exec 0<&-; sleep 0.1; echo done");
  c.input = std::string(1 << 20, 'x');  // more than a pipe holds
  const ChildResult r = run_child(c, reaper);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "done\n");
}

}  // namespace
}  // namespace sidecar::sync
