#include "sync/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/spawn.h"
#include "module/module.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace sidecar::sync {

// Registers the running child with a Canceller while it may be killed.
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

bool DirectReaper::try_reap(pid_t pid, int& wait_status, rusage& usage) {
  return ::wait4(pid, &wait_status, WNOHANG, &usage) == pid;
}

pid_t HostReaper::spawn(const std::function<pid_t()>& spawn) { return host_.spawn_child(spawn); }

bool HostReaper::try_reap(pid_t pid, int& wait_status, rusage& usage) {
  return host_.reap_child(pid, wait_status, usage);
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
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(full.c_str(), X_OK) == 0) {
      return full;
    }
    i = colon + 1;
  }
  return {};
}

struct Pipe {
  int read = -1, write = -1;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
  void close_read() {
    if (read >= 0) ::close(read);
    read = -1;
  }
  void close_write() {
    if (write >= 0) ::close(write);
    write = -1;
  }
  ~Pipe() {
    close_read();
    close_write();
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

// Writes what the pipe takes; false when done (all written, or the child
// closed its stdin).
bool feed(int fd, const std::string& input, size_t& written) {
  // A child that closed its stdin must not kill this process with SIGPIPE
  // (sidecar ignores it; a test binary may not): blocked in this thread for
  // the write, and a pending one consumed.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  const ssize_t w = ::write(fd, input.data() + written, input.size() - written);
  const int write_errno = errno;
  if (w < 0 && write_errno == EPIPE) {
    const timespec zero{0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  if (w > 0) written += static_cast<size_t>(w);
  if (w < 0 && (write_errno == EAGAIN || write_errno == EINTR)) return true;
  return w >= 0 && written < input.size();
}

pid_t spawn_child(const std::string& path, const Command& command, int in, int out, int err,
                  int& spawn_errno) {
  core::SpawnSpec spec;
  spec.argv = command.argv;
  spec.program = path;
  spec.env = command.env;
  spec.unset = command.unset;
  spec.cwd = command.cwd;
  spec.stdin_fd = in;
  spec.stdout_fd = out;
  spec.stderr_fd = err;
  spec.close_other_fds = true;
  return core::spawn_process(spec, spawn_errno);
}

}  // namespace

ChildResult run_child(const Command& command, Reaper& reaper, Canceller* canceller) {
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
  Pipe out, err, in;
  int devnull = -1;
  bool pipes = out.open() && err.open();
  if (command.input.empty()) {
    devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pipes = pipes && devnull >= 0;
  } else {
    pipes = pipes && in.open();
  }
  if (!pipes) {
    r.err = fmt::format("cannot create pipes: {}", std::strerror(errno));
    if (devnull >= 0) ::close(devnull);
    return r;
  }
  ::fcntl(out.read, F_SETFL, O_NONBLOCK);
  ::fcntl(err.read, F_SETFL, O_NONBLOCK);
  if (in.write >= 0) ::fcntl(in.write, F_SETFL, O_NONBLOCK);

  int spawn_errno = 0;
  int pidfd = -1;
  const pid_t pid = reaper.spawn([&] {
    const pid_t p = spawn_child(path, command, devnull >= 0 ? devnull : in.read, out.write,
                                err.write, spawn_errno);
    // Opened before the reaper can take it: the pid still names the child.
    if (p > 0) pidfd = static_cast<int>(::syscall(SYS_pidfd_open, p, 0));
    return p;
  });
  out.close_write();
  err.close_write();
  in.close_read();
  if (devnull >= 0) ::close(devnull);
  if (pid <= 0) {
    r.err = fmt::format("cannot start {}: {}", path, std::strerror(spawn_errno));
    return r;
  }
  ChildRegistration registration(canceller, pid);

  size_t written = 0;
  bool timed_out = false;
  int wait_status = 0;
  rusage usage{};
  bool reaped = false;
  while (true) {
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
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(command.deadline - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 1000));
    }
    if (pidfd < 0) timeout_ms = std::min(timeout_ms, 20);
    const int ready = ::poll(fds, n, timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (in_index >= 0 && fds[in_index].revents != 0 && !feed(in.write, command.input, written)) {
      in.close_write();
    }
    if (out_index >= 0 && (fds[out_index].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
        !drain(out.read, r.out, command.max_stdout, false)) {
      out.close_read();
    }
    if (err_index >= 0 && (fds[err_index].revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
        !drain(err.read, r.err, command.max_stderr, true)) {
      err.close_read();
    }
    const bool exited = pid_index >= 0 ? (fds[pid_index].revents & POLLIN) != 0
                                       : reaper.try_reap(pid, wait_status, usage);
    if (exited) {
      reaped = pid_index < 0;
      break;
    }
    if (!timed_out && Clock::now() >= command.deadline) {
      ::kill(-pid, SIGKILL);
      timed_out = true;
    }
  }
  registration.release();
  // The output it wrote before it ended.
  if (out.read >= 0) drain(out.read, r.out, command.max_stdout, false);
  if (err.read >= 0) drain(err.read, r.err, command.max_stderr, true);
  // The reaper may not have taken it yet (SIGCHLD is handled on the main
  // loop): a short wait, which its exit bounds.
  while (!reaped && !(reaped = reaper.try_reap(pid, wait_status, usage))) {
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, 5);
    } else {
      ::usleep(5000);
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  r.max_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  if (WIFEXITED(wait_status)) {
    r.end = ChildResult::End::kExited;
    r.exit_code = WEXITSTATUS(wait_status);
  } else {
    r.end = ChildResult::End::kSignaled;
    r.signal = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
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
