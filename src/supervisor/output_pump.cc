#include "supervisor/output_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>

namespace sidecar::supervisor {
namespace {

// Writes all of `data` to `fd`, waiting when it is non-blocking and full.
void write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
    } else {
      return;  // our stdout is gone: the copy for the pipeline still goes on
    }
  }
}

void pump(int out_fd, int err_fd, OutputFn fn) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  char buf[64 * 1024];
  int open = 2;
  while (open > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
        fn(i + 1, {});
        continue;
      }
      write_all(i + 1, buf, static_cast<size_t>(n));
      fn(i + 1, std::string_view(buf, static_cast<size_t>(n)));
    }
  }
}

}  // namespace

OutputPipes make_output_pipes() {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe for the app's stdout");
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    throw std::system_error(e, std::generic_category(), "pipe for the app's stderr");
  }
  return OutputPipes{out[1], err[1], out[0], err[0]};
}

void start_output_pump(const OutputPipes& pipes, OutputFn on_output) {
  std::thread(pump, pipes.stdout_read, pipes.stderr_read, std::move(on_output)).detach();
}

}  // namespace sidecar::supervisor
