#include "sync/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

extern char** environ;

namespace sidecar::sync {

// Registers the running child with a Canceller for the time it may be
// killed: from right after clone until just before it is reaped (a zombie
// keeps its pid, so the group id cannot name another process meanwhile).
class ChildRegistration {
 public:
  ChildRegistration(Canceller* c, pid_t pid) : c_(c) {
    if (c_ == nullptr) return;
    std::lock_guard lock(c_->mutex_);
    c_->running_ = pid;
    if (c_->cancelled()) ::kill(-pid, SIGKILL);
  }
  void release() {
    if (c_ == nullptr) return;
    std::lock_guard lock(c_->mutex_);
    c_->running_ = 0;
    c_ = nullptr;
  }
  ~ChildRegistration() { release(); }

 private:
  Canceller* c_;
};

void Canceller::cancel() {
  cancelled_.store(true, std::memory_order_release);
  std::lock_guard lock(mutex_);
  if (running_ > 0) ::kill(-running_, SIGKILL);
}

std::string ChildResult::describe() const {
  switch (end) {
    case End::kExited:
      return fmt::format("exit code {}", exit_code);
    case End::kSignaled:
      return fmt::format("killed by signal {}", signal);
    case End::kTimedOut:
      return "timed out";
    case End::kCancelled:
      return "stopped (shutting down)";
    case End::kNotStarted:
      return "could not start: " + err;
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;

// Everything the child reads between clone and exec, prepared beforehand.
struct ChildSetup {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // nullptr: stay
  int in, out, err;
  mode_t umask;
  const char* exec_error;
  size_t exec_error_len;
  const char* chdir_error;
  size_t chdir_error_len;
};

// The child, after clone: raw system calls only.
[[noreturn]] void child_main(const ChildSetup& s) {
  ::syscall(SYS_setpgid, 0, 0);
  // Default dispositions (sidecar ignores SIGPIPE; ignored signals survive
  // exec) and an empty mask. All zero is SIG_DFL in the kernel's struct.
  unsigned long dfl[4] = {0, 0, 0, 0};
  for (int sig = 1; sig < 32; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::syscall(SYS_rt_sigaction, sig, dfl, nullptr, 8);
  }
  unsigned long empty = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, nullptr, sizeof(empty));
  ::syscall(SYS_dup3, s.in, 0, 0);
  ::syscall(SYS_dup3, s.out, 1, 0);
  ::syscall(SYS_dup3, s.err, 2, 0);
  if (s.cwd != nullptr && ::syscall(SYS_chdir, s.cwd) != 0) {
    ::syscall(SYS_write, 2, s.chdir_error, s.chdir_error_len);
    ::syscall(SYS_exit_group, 127);
  }
  ::syscall(SYS_umask, s.umask);
  ::syscall(SYS_close_range, 3U, ~0U, 0U);  // they are O_CLOEXEC anyway
  ::syscall(SYS_execve, s.path, s.argv, s.envp);
  ::syscall(SYS_write, 2, s.exec_error, s.exec_error_len);
  ::syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* env_path = std::getenv("PATH");
  const std::string_view path = env_path != nullptr ? env_path : "/usr/local/bin:/usr/bin:/bin";
  size_t i = 0;
  while (i <= path.size()) {
    size_t colon = path.find(':', i);
    if (colon == std::string_view::npos) colon = path.size();
    const std::string_view dir = colon == i ? std::string_view(".") : path.substr(i, colon - i);
    std::string full;
    full.reserve(dir.size() + 1 + name.size());
    full.append(dir).append("/").append(name);
    struct stat st {};
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(full.c_str(), X_OK) == 0) {
      return full;
    }
    i = colon + 1;
  }
  return {};
}

// A descriptor >= 3, so that moving it to 0, 1 or 2 in the child cannot
// overwrite another one.
int above_stdio(int fd) {
  if (fd >= 3) return fd;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

struct Pipe {
  int read = -1, write = -1;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = above_stdio(fds[0]);
    write = above_stdio(fds[1]);
    ::fcntl(read, F_SETFL, O_NONBLOCK);
    return read >= 0 && write >= 0;
  }
  void close_read() {
    if (read >= 0) ::close(read);
    read = -1;
  }
  void close_write() {
    if (write >= 0) ::close(write);
    write = -1;
  }
};

// Reads what is there; false at end of file (or an error).
bool drain(int fd, std::string& into, size_t max, bool keep_end) {
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      if (into.size() < max || keep_end) into.append(buf, static_cast<size_t>(n));
      if (into.size() > max) {
        if (keep_end) {
          into.erase(0, into.size() - max);
        } else {
          into.resize(max);
        }
      }
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

}  // namespace

ChildResult run_child(const Command& command, Canceller* canceller) {
  ChildResult r;
  if (command.argv.empty()) {
    r.err = "empty command";
    return r;
  }
  if (canceller != nullptr && canceller->cancelled()) {
    r.end = ChildResult::End::kCancelled;
    return r;
  }
  const std::string path = find_program(command.argv[0]);
  if (path.empty()) {
    r.err = fmt::format("{} not found in PATH", command.argv[0]);
    return r;
  }

  // The environment: ours, less what is unset or replaced, plus `env`.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const std::string_view key = kv.substr(0, kv.find('='));
    bool drop = false;
    for (const auto& u : command.unset) drop = drop || key == u;
    for (const auto& [k, v] : command.env) drop = drop || key == k;
    if (!drop) env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : command.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings(command.argv);
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string exec_error = fmt::format("cannot execute {}\n", path);
  const std::string chdir_error = fmt::format("cannot change to {}\n", command.cwd);

  Pipe out, err, in;
  int devnull = -1;
  bool pipes = out.open() && err.open();
  if (command.input.empty()) {
    devnull = above_stdio(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    pipes = pipes && devnull >= 0;
  } else {
    pipes = pipes && in.open();
    if (pipes) {
      ::fcntl(in.read, F_SETFL, 0);  // the child's end blocks
      ::fcntl(in.write, F_SETFL, O_NONBLOCK);
    }
  }
  if (!pipes) {
    r.err = fmt::format("cannot create pipes: {}", std::strerror(errno));
    out.close_read(), out.close_write(), err.close_read(), err.close_write();
    in.close_read(), in.close_write();
    if (devnull >= 0) ::close(devnull);
    return r;
  }
  const ChildSetup setup{path.c_str(),
                         argv.data(),
                         envp.data(),
                         command.cwd.empty() ? nullptr : command.cwd.c_str(),
                         devnull >= 0 ? devnull : in.read,
                         out.write,
                         err.write,
                         command.umask,
                         exec_error.data(),
                         exec_error.size(),
                         chdir_error.data(),
                         chdir_error.size()};

  // No exit signal (the low byte of the flags is 0): a "clone child" that
  // the main loop's waitpid(-1) does not reap.
  int pidfd = -1;
  long pid = ::syscall(SYS_clone, CLONE_PIDFD, nullptr, &pidfd, nullptr, nullptr);
  if (pid < 0 && errno == EINVAL) {  // a kernel before 5.2: no pidfd
    pidfd = -1;
    pid = ::syscall(SYS_clone, 0, nullptr, nullptr, nullptr, nullptr);
  }
  if (pid == 0) child_main(setup);
  const int clone_errno = errno;
  out.close_write();
  err.close_write();
  in.close_read();
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) {
    r.err = fmt::format("cannot start {}: {}", path, std::strerror(clone_errno));
    out.close_read();
    err.close_read();
    in.close_write();
    return r;
  }
  size_t written = 0;
  // Also done by the child; whichever comes first, the group exists from here on.
  ::setpgid(static_cast<pid_t>(pid), static_cast<pid_t>(pid));
  ChildRegistration registration(canceller, static_cast<pid_t>(pid));

  bool exited = false, timed_out = false;
  while (!exited) {
    pollfd fds[4];
    nfds_t n = 0;
    const int in_index = in.write >= 0 ? static_cast<int>(n) : -1;
    if (in.write >= 0) fds[n++] = {in.write, POLLOUT, 0};
    const int out_index = out.read >= 0 ? static_cast<int>(n) : -1;
    if (out.read >= 0) fds[n++] = {out.read, POLLIN, 0};
    const int err_index = err.read >= 0 ? static_cast<int>(n) : -1;
    if (err.read >= 0) fds[n++] = {err.read, POLLIN, 0};
    const int pid_index = pidfd >= 0 ? static_cast<int>(n) : -1;
    if (pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
    int timeout_ms = 20;
    if (!timed_out) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(command.deadline -
                                                                              Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 1000));
      if (pidfd < 0) timeout_ms = std::min(timeout_ms, 20);
    }
    const int ready = ::poll(fds, n, timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (in_index >= 0 && fds[in_index].revents != 0) {
      // A child that closed its stdin must not kill this process with
      // SIGPIPE (sidecar ignores it; a test binary may not): blocked in this
      // thread for the write, and a pending one consumed.
      sigset_t pipe_set, old_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
      const ssize_t w =
          ::write(in.write, command.input.data() + written, command.input.size() - written);
      const int write_errno = errno;
      if (w < 0 && write_errno == EPIPE) {
        const timespec zero{0, 0};
        sigtimedwait(&pipe_set, nullptr, &zero);
      }
      pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
      errno = write_errno;
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == command.input.size()) {
        in.close_write();  // all of it, or the child closed its end (EPIPE)
      }
    }
    if (out_index >= 0 && (fds[out_index].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
        !drain(out.read, r.out, command.max_stdout, false)) {
      out.close_read();
    }
    if (err_index >= 0 && (fds[err_index].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
        !drain(err.read, r.err, command.max_stderr, true)) {
      err.close_read();
    }
    if (pid_index >= 0 && (fds[pid_index].revents & POLLIN) != 0) {
      exited = true;
    } else if (pidfd < 0) {
      siginfo_t info{};
      exited = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT | __WCLONE) == 0 &&
               info.si_pid != 0;
    }
    if (!exited && !timed_out && Clock::now() >= command.deadline) {
      ::kill(-static_cast<pid_t>(pid), SIGKILL);
      timed_out = true;
    }
  }
  // What its group left running dies with it (the leader is not reaped yet,
  // so the group id is still this one).
  ::kill(-static_cast<pid_t>(pid), SIGKILL);
  if (out.read >= 0) drain(out.read, r.out, command.max_stdout, false);
  if (err.read >= 0) drain(err.read, r.err, command.max_stderr, true);
  out.close_read();
  err.close_read();
  in.close_write();
  registration.release();
  int status = 0;
  rusage usage{};
  while (::wait4(static_cast<pid_t>(pid), &status, __WCLONE, &usage) < 0 && errno == EINTR) {
  }
  if (pidfd >= 0) ::close(pidfd);
  r.max_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  if (WIFEXITED(status)) {
    r.end = ChildResult::End::kExited;
    r.exit_code = WEXITSTATUS(status);
  } else {
    r.end = ChildResult::End::kSignaled;
    r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  if (r.end == ChildResult::End::kSignaled && r.signal == SIGKILL) {
    if (timed_out) {
      r.end = ChildResult::End::kTimedOut;
    } else if (canceller != nullptr && canceller->cancelled()) {
      r.end = ChildResult::End::kCancelled;
    }
  }
  return r;
}

}  // namespace sidecar::sync
