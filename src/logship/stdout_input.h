// The `app_stdout` input: what the supervised app writes to stdout and
// stderr, copied by the supervisor (module::Host::subscribe_app_output).
//
// The supervisor's thread must never wait for us, so bytes go into a
// bounded queue (buffer_size); what does not fit is dropped and counted
// (sidecar_logs_dropped_total{reason="app_output_full"}): the line being
// written is cut where the drop happened, and the bytes up to the next
// newline are dropped too, so no line is glued to another.
//
// Thread safety: on_output() from the supervisor's thread; the rest on the
// shipper thread.
#pragma once

#include <mutex>
#include <string>

#include "logship/pipeline.h"

namespace sidecar::logship {

class StdoutInput {
 public:
  StdoutInput(Pipeline& pipeline, InputRuntime& input);

  // Supervisor thread: `stream` 1 or 2; empty data: the stream closed.
  void on_output(int stream, std::string_view data);
  // Shipper thread: turns what was queued into records; true if it did any.
  bool process();
  void on_tick(bool force_flush);
  // Streams with data seen and no end yet (stop waits for them).
  bool open_streams() const;
  bool queued() const;
  void status_json(std::string& out) const;
  InputRuntime& input() { return input_; }

 private:
  struct Stream {
    explicit Stream(const InputConfig& c) : line(c) {}
    std::shared_ptr<Tracker> tracker = std::make_shared<Tracker>();
    LineState line;
    BatchBuilder builder;
    uint64_t offset = 0;
    bool open = false;  // shipper side: data seen, end not yet
  };
  struct Queue {
    std::string data;
    bool skip_to_newline = false;
    bool closed = false;  // an end is queued after data
    bool wanted = true;
  };

  Pipeline& pipeline_;
  InputRuntime& input_;
  Stream streams_[2];
  mutable std::mutex mutex_;
  Queue queues_[2];
  uint64_t queued_bytes_ = 0;
  std::string taken_;
};

}  // namespace sidecar::logship
