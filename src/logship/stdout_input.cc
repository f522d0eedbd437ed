#include "logship/stdout_input.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace sidecar::logship {

StdoutInput::StdoutInput(Pipeline& pipeline, InputRuntime& input)
    : pipeline_(pipeline), input_(input), streams_{Stream(input.config), Stream(input.config)} {
  queues_[0].wanted = input.config.app_stdout.stdout_stream;
  queues_[1].wanted = input.config.app_stdout.stderr_stream;
}

void StdoutInput::on_output(int stream, std::string_view data) {
  if (stream != 1 && stream != 2) return;
  {
    std::lock_guard lock(mutex_);
    Queue& q = queues_[stream - 1];
    if (!q.wanted) return;
    if (data.empty()) {
      q.closed = true;
    } else {
      if (q.skip_to_newline) {
        const size_t nl = data.find('\n');
        const size_t skipped = nl == std::string_view::npos ? data.size() : nl + 1;
        bump(input_.counters.dropped_buffer_full,
             static_cast<uint64_t>(std::count(data.begin(), data.begin() + skipped, '\n')));
        data.remove_prefix(skipped);
        q.skip_to_newline = nl == std::string_view::npos;
      }
      if (!data.empty()) {
        if (queued_bytes_ + data.size() > input_.config.app_stdout.buffer_size) {
          // Full: drop this piece; cut the line it belongs to.
          bump(input_.counters.dropped_buffer_full,
               std::max<uint64_t>(
                   1, static_cast<uint64_t>(std::count(data.begin(), data.end(), '\n'))));
          if (!q.data.empty() && q.data.back() != '\n') {
            q.data += '\n';
            ++queued_bytes_;
          }
          q.skip_to_newline = data.back() != '\n';
        } else {
          q.data.append(data);
          queued_bytes_ += data.size();
        }
      }
    }
  }
  pipeline_.wake();
}

bool StdoutInput::process() {
  bool any = false;
  for (int i = 0; i < 2; ++i) {
    bool closed = false;
    {
      std::lock_guard lock(mutex_);
      Queue& q = queues_[i];
      if (q.data.empty() && !q.closed) continue;
      taken_.swap(q.data);
      q.data.clear();
      queued_bytes_ -= std::min<uint64_t>(queued_bytes_, taken_.size());
      closed = q.closed;
      q.closed = false;
    }
    any = true;
    Stream& s = streams_[i];
    if (!s.builder.tracker) s.builder.tracker = s.tracker;
    const std::string_view name = i == 0 ? "stdout" : "stderr";
    if (!taken_.empty()) {
      s.open = true;
      // partial line + new bytes, contiguous and padded
      std::string& buf = s.line.partial;
      const size_t partial = buf.size();
      buf.append(taken_);
      s.offset += taken_.size();
      bump(input_.counters.bytes, taken_.size());
      std::string data;
      data.swap(buf);
      const size_t size = data.size();
      data.append(kPadding, '\0');
      (void)partial;
      pipeline_.feed(input_, s.line, s.builder, data.data(), size, s.offset, closed, name);
    } else if (closed && !s.line.partial.empty()) {
      std::string data;
      data.swap(s.line.partial);
      const size_t size = data.size();
      data.append(kPadding, '\0');
      pipeline_.feed(input_, s.line, s.builder, data.data(), size, s.offset, true, name);
    }
    if (closed) {
      pipeline_.flush_expired(input_, s.line, s.builder, s.offset, true, name);
      s.open = false;
    }
    pipeline_.flush(input_, s.line, s.builder, s.offset);
    taken_.clear();
    if (taken_.capacity() > (1 << 20)) std::string().swap(taken_);
  }
  return any;
}

void StdoutInput::on_tick(bool force_flush) {
  for (int i = 0; i < 2; ++i) {
    Stream& s = streams_[i];
    if (!s.builder.tracker) s.builder.tracker = s.tracker;
    const std::string_view name = i == 0 ? "stdout" : "stderr";
    pipeline_.flush_expired(input_, s.line, s.builder, s.offset, force_flush, name);
    if (force_flush && !s.line.partial.empty()) {
      std::string data;
      data.swap(s.line.partial);
      const size_t size = data.size();
      data.append(kPadding, '\0');
      pipeline_.feed(input_, s.line, s.builder, data.data(), size, s.offset, true, name);
    }
    if (s.builder.batch) pipeline_.flush(input_, s.line, s.builder, s.offset);
  }
}

bool StdoutInput::open_streams() const { return streams_[0].open || streams_[1].open; }

bool StdoutInput::queued() const {
  std::lock_guard lock(mutex_);
  return !queues_[0].data.empty() || !queues_[1].data.empty() || queues_[0].closed ||
         queues_[1].closed;
}

void StdoutInput::status_json(std::string& b) const {
  uint64_t queued = 0;
  {
    std::lock_guard lock(mutex_);
    queued = queued_bytes_;
  }
  b += fmt::format("{{\"queued_bytes\":{},\"stdout_open\":{},\"stderr_open\":{}}}", queued,
                   streams_[0].open ? "true" : "false", streams_[1].open ? "true" : "false");
}

}  // namespace sidecar::logship
