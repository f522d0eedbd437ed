// The log shipping pipeline: inputs (files, the app's stdout) -> lines ->
// multiline -> parsers -> filters -> batches -> one buffer per output ->
// outputs; acknowledgements flow back and advance the inputs' checkpoints.
//
// All of it runs on one thread of its own (the shipper), with one
// io_context; nothing here touches the proxy's workers. The module
// (module.cc) talks to it from the main thread through post() and waits
// with a deadline.
//
// At-least-once: a batch carries its source and the offset its records end
// at; it is held once per output that takes it, released when that output
// acknowledged it (or wrote it to a disk chunk); a file's checkpoint is the
// end offset of its longest prefix of released batches (Tracker).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "logship/buffer.h"
#include "logship/config.h"
#include "logship/filters.h"
#include "logship/multiline.h"
#include "logship/parsers.h"
#include "logship/record.h"
#include "logship/state.h"

namespace sidecar::stats {
class MetricWriter;
}

namespace sidecar::logship {

class Output;
class FileInput;
class StdoutInput;
class Pipeline;

using Counter = std::atomic<uint64_t>;
inline void bump(Counter& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
inline uint64_t get(const Counter& c) { return c.load(std::memory_order_relaxed); }

struct InputCounters {
  Counter lines{0};
  Counter bytes{0};
  Counter records{0};
  Counter parse_failures{0};
  Counter invalid_utf8{0};
  Counter long_lines_split{0};
  Counter long_lines_truncated{0};
  Counter dropped_grep{0};
  Counter dropped_sampled{0};
  Counter dropped_rate_limited{0};
  Counter dropped_buffer_full{0};  // app_stdout: the app wrote faster than we shipped
  Counter replayed_lines{0};       // re-read after a crash: may have been delivered before
  Counter multiline_records{0};
};

struct OutputCounters {
  Counter sent{0};         // records acknowledged by the receiver
  Counter dead_letter{0};  // rejected as invalid (HTTP 400, bulk item errors)
  Counter dropped_retries{0};
  Counter dropped_oldest{0};
  Counter retries{0};
  Counter requests{0};
  Counter bytes{0};
  Counter errors{0};
};

// The acknowledgements of one source (a file generation, an app stream):
// batches are numbered; `committed` is the end offset of the longest
// prefix that was acknowledged.
class Tracker : public AckSink {
 public:
  uint64_t committed = 0;
  uint64_t next_seq = 0;
  // Registers a batch ending at `end`; returns its number.
  uint64_t add(uint64_t end);
  void acked(uint64_t seq) override;
  size_t in_flight() const { return pending_.size(); }

 private:
  struct Pending {
    uint64_t end;
    bool acked;
  };
  std::deque<Pending> pending_;
  uint64_t first_seq_ = 0;
};

// What turns a source's bytes into records: its partial line, multiline
// and CRI state, filter state.
struct LineState {
  explicit LineState(const InputConfig& config) : multiline(config.multiline) {}
  std::string partial;      // bytes after the last newline
  bool discarding = false;  // truncating a long line: skip to the next newline
  Multiline multiline;
  uint64_t multiline_start = 0;  // offset where the pending multiline record begins
  std::string cri;               // CRI partial (P) messages so far
  uint64_t cri_start = 0;
  Filters::SourceState filter_state;
  uint64_t replay_until = 0;  // lines ending at or before this were read before a crash
};

// One configured input and what it needs to make records.
struct InputRuntime {
  InputRuntime(const InputConfig& c) : config(c), parsers(c.parsers), filters(c.filters) {}
  const InputConfig& config;
  Parsers parsers;
  Filters filters;
  std::vector<Output*> outputs;
  InputCounters counters;
  // Sizes of the last batch, to reserve the next one's vectors at once.
  size_t last_records = 0;
  size_t last_fields = 0;
};

// The batch being built for one source.
struct BatchBuilder {
  std::shared_ptr<Batch> batch;
  std::shared_ptr<Tracker> tracker;
};

class Pipeline {
 public:
  explicit Pipeline(Section config);
  ~Pipeline();

  // Opens the state directory, loads checkpoints and chunk files, starts the
  // shipper thread. False (logged) when the state directory is unusable.
  bool start();
  // Reads what is left (the app has exited), flushes partial records, waits
  // for the outputs up to `deadline`, spills what remains to disk (disk
  // buffers), writes the last checkpoint, stops the thread.
  void stop(std::chrono::steady_clock::time_point deadline);

  // From the supervisor's output thread (module::AppOutputFn).
  void on_app_output(int stream, std::string_view data);
  bool wants_app_output() const;

  // On the main thread; they wait (briefly) for the shipper thread.
  std::string status_json();
  void collect(stats::MetricWriter& w);
  bool ready() const { return ready_.load(); }

  // --- used by inputs and outputs, on the shipper thread ---
  boost::asio::io_context& io() { return io_; }
  const Section& config() const { return config_; }
  StateStore& state() { return *state_; }
  int64_t now_ns() const;
  // Asks for a pump turn (read inputs) soon.
  void wake();
  // An output made room or finished: inputs may read again.
  void on_output_progress() { wake(); }
  // Turns `data` (complete lines and maybe a partial one at the end) of a
  // source into records of `builder`'s batch. `end_offset` is the source
  // offset just past `data`. With `eof`, a partial line at the end is a line.
  void feed(InputRuntime& input, LineState& state, BatchBuilder& builder, const char* data,
            size_t size, uint64_t end_offset, bool eof, std::string_view path);
  // Hands the builder's batch to the outputs, acknowledging up to `safe_offset`
  // (what is not held back by multiline or CRI partials).
  void flush(InputRuntime& input, LineState& state, BatchBuilder& builder, uint64_t end_offset);
  // Whether an input may read (no output it feeds is full and blocking).
  bool can_read(const InputRuntime& input) const;
  bool draining() const { return draining_; }
  // Flushes multiline records that waited long enough.
  void flush_expired(InputRuntime& input, LineState& state, BatchBuilder& builder,
                     uint64_t end_offset, bool force, std::string_view path);

 private:
  void run();
  void pump();
  void on_timer();
  void save_checkpoints(bool clean);
  void make_record(InputRuntime& input, LineState& state, Batch& b, std::string_view text,
                   std::string_view path);
  void emit_line(InputRuntime& input, LineState& state, Batch& b, std::string_view line,
                 uint64_t line_start, std::string_view path);
  bool outputs_idle() const;

  const Section config_;  // a copy: the app's output thread may outlive the module
  boost::asio::io_context io_;
  std::unique_ptr<StateStore> state_;
  std::vector<std::unique_ptr<InputRuntime>> inputs_;
  std::vector<std::unique_ptr<FileInput>> files_;
  std::unique_ptr<StdoutInput> stdout_;
  std::vector<std::unique_ptr<OutputBuffer>> buffers_;
  std::vector<std::unique_ptr<Output>> outputs_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point last_checkpoint_;
  std::atomic<bool> wake_posted_{false};
  std::atomic<bool> ready_{false};
  bool draining_ = false;
  bool checkpoint_dirty_ = false;
  std::string scratch_;  // sanitized or joined lines (padded)
  std::string scratch2_;
  int64_t chunk_now_ns_ = 0;
  std::thread thread_;
  friend class FileInput;
  friend class StdoutInput;
};

}  // namespace sidecar::logship
