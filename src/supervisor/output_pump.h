// Carries the supervised app's stdout and stderr when something (log
// shipping) wants a copy: the app writes into two pipes; a thread reads
// them, writes every byte on to the sidecar's own stdout (fd 1) or stderr
// (fd 2) as the app would have, then hands the same bytes to `on_output`.
//
// Back-pressure is what it was without the pipe: a blocked stdout blocks
// the app. `on_output` must not block (it queues; see module::AppOutputFn).
// Empty data: that stream reached its end.
//
// Thread safety: the thread is detached and owns what it uses (the app's
// children may hold the pipes open after the app exits); the callback
// must stay valid until the process exits.
#pragma once

#include <functional>
#include <string_view>

namespace sidecar::supervisor {

using OutputFn = std::function<void(int fd, std::string_view data)>;  // fd: 1 or 2

// Pipes for one run of the app.
struct OutputPipes {
  int stdout_write = -1;  // give to the app as fd 1
  int stderr_write = -1;  // give to the app as fd 2
  int stdout_read = -1;
  int stderr_read = -1;
};

// Creates the pipes (close-on-exec). Throws std::system_error.
OutputPipes make_output_pipes();

// Starts the thread reading `pipes` (the read ends; the caller closes the
// write ends once the app has them).
void start_output_pump(const OutputPipes& pipes, OutputFn on_output);

}  // namespace sidecar::supervisor
