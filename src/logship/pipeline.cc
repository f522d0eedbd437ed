#include "logship/pipeline.h"

#include <time.h>

#include <cstring>
#include <future>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "core/json.h"
#include "logship/file_input.h"
#include "logship/output.h"
#include "logship/stdout_input.h"

namespace sidecar::logship {

namespace asio = boost::asio;

namespace {

constexpr auto kTick = std::chrono::milliseconds(200);

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool matches(const OutputConfig& o, const InputConfig& in) {
  for (const auto& m : o.match) {
    if (m == "*" || m == in.name || m == in.tag) return true;
  }
  return false;
}

}  // namespace

uint64_t Tracker::add(uint64_t end) {
  if (pending_.empty()) first_seq_ = next_seq;
  pending_.push_back({end, false});
  return next_seq++;
}

void Tracker::acked(uint64_t seq) {
  if (seq < first_seq_ || seq - first_seq_ >= pending_.size()) return;
  pending_[seq - first_seq_].acked = true;
  while (!pending_.empty() && pending_.front().acked) {
    committed = std::max(committed, pending_.front().end);
    pending_.pop_front();
    ++first_seq_;
  }
}

Pipeline::Pipeline(Section config) : config_(std::move(config)), io_(1), timer_(io_) {
  for (const InputConfig& in : config_.inputs) {
    inputs_.push_back(std::make_unique<InputRuntime>(in));
  }
  for (const OutputConfig& o : config_.outputs) {
    buffers_.push_back(std::make_unique<OutputBuffer>(
        o.buffer, config_.state_dir + "/buffer/" + o.name, config_.fsync));
    outputs_.push_back(make_output(o, *this, *buffers_.back()));
    for (auto& in : inputs_) {
      if (matches(o, in->config)) in->outputs.push_back(outputs_.back().get());
    }
  }
  for (auto& in : inputs_) {
    if (in->config.kind == InputConfig::Kind::kAppStdout) {
      stdout_ = std::make_unique<StdoutInput>(*this, *in);
    }
  }
}

Pipeline::~Pipeline() {
  if (thread_.joinable()) {
    io_.stop();
    thread_.join();
  }
}

bool Pipeline::wants_app_output() const { return stdout_ != nullptr; }

void Pipeline::on_app_output(int stream, std::string_view data) {
  if (stdout_) stdout_->on_output(stream, data);
}

int64_t Pipeline::now_ns() const {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool Pipeline::start() {
  state_ = std::make_unique<StateStore>(config_.state_dir, config_.fsync);
  std::string error;
  if (!state_->open(error)) {
    spdlog::error("logs: {}", error);
    return false;
  }
  if (!state_->clean_start()) {
    spdlog::warn(
        "logs: the last run did not stop cleanly; lines read after its last "
        "checkpoint are read again (counted as sidecar_logs_input_replayed_lines_total)");
  }
  for (auto& b : buffers_) b->recover();
  for (auto& in : inputs_) {
    if (in->config.kind == InputConfig::Kind::kFile) {
      files_.push_back(std::make_unique<FileInput>(*this, *in, true));
    }
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void Pipeline::run() {
  asio::post(io_, [this] {
    for (auto& f : files_) f->start();
    for (auto& o : outputs_) o->wake();
    last_checkpoint_ = std::chrono::steady_clock::now();
    save_checkpoints(false);
    ready_ = true;
    on_timer();
    pump();
  });
  io_.run();
}

void Pipeline::wake() {
  if (wake_posted_.exchange(true)) return;
  asio::post(io_, [this] {
    wake_posted_ = false;
    pump();
  });
}

bool Pipeline::can_read(const InputRuntime& input) const {
  for (const Output* o : input.outputs) {
    if (const_cast<Output*>(o)->buffer().full()) return false;
  }
  return true;
}

void Pipeline::pump() {
  bool more = false;
  if (stdout_ && can_read(stdout_->input())) more = stdout_->process() || more;
  for (auto& f : files_) {
    if (can_read(f->input())) more = f->read_some() || more;
  }
  if (more) wake();  // yield to the outputs' completions, then read on
}

void Pipeline::on_timer() {
  timer_.expires_after(kTick);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    for (auto& f : files_) f->on_tick(false);
    if (stdout_) stdout_->on_tick(false);
    for (auto& b : buffers_) b->retry_spill();
    for (auto& o : outputs_) o->wake();
    if (checkpoint_dirty_ &&
        std::chrono::steady_clock::now() - last_checkpoint_ >= config_.checkpoint_interval) {
      save_checkpoints(false);
    }
    pump();
    on_timer();
  });
}

void Pipeline::save_checkpoints(bool clean) {
  std::vector<FileCheckpoint> all;
  for (auto& f : files_) f->checkpoints(all);
  if (!state_->save(all, clean)) {
    spdlog::warn("logs: cannot write checkpoints in {}: {}", config_.state_dir,
                 std::strerror(errno));
  }
  checkpoint_dirty_ = false;
  last_checkpoint_ = std::chrono::steady_clock::now();
}

bool Pipeline::outputs_idle() const {
  for (const auto& o : outputs_) {
    if (!o->idle()) return false;
  }
  return true;
}

void Pipeline::stop(std::chrono::steady_clock::time_point deadline) {
  if (!thread_.joinable()) return;
  // Keep a little time to write what is left to disk and the checkpoints.
  const auto now = std::chrono::steady_clock::now();
  const auto reserve = std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(500),
                                                                     (deadline - now) / 5);
  const auto drain_until = deadline - std::max<std::chrono::steady_clock::duration>(
                                          reserve, std::chrono::steady_clock::duration::zero());
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  // Drain: read to the end of every file (the app has exited), wait for the
  // app's streams to close, flush partial records, and let the outputs
  // deliver, checking every few milliseconds.
  auto step = std::make_shared<std::function<void()>>();
  auto timer = std::make_shared<asio::steady_timer>(io_);
  // The step holds itself weakly (stop() keeps it alive), so no cycle leaks.
  *step = [this, weak = std::weak_ptr<std::function<void()>>(step), timer, done, drain_until] {
    draining_ = true;
    pump();
    bool inputs_done = true;
    for (auto& f : files_) inputs_done = inputs_done && f->drained();
    if (stdout_) inputs_done = inputs_done && !stdout_->queued() && !stdout_->open_streams();
    if (inputs_done) {
      for (auto& f : files_) f->flush_all();
      if (stdout_) stdout_->on_tick(true);
    }
    for (auto& o : outputs_) o->wake();
    if ((inputs_done && outputs_idle()) || std::chrono::steady_clock::now() >= drain_until) {
      done->set_value();
      return;
    }
    timer->expires_after(std::chrono::milliseconds(10));
    timer->async_wait([weak](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto s = weak.lock()) (*s)();
    });
  };
  asio::post(io_, [step] { (*step)(); });
  if (finished.wait_until(drain_until + std::chrono::milliseconds(50)) !=
      std::future_status::ready) {
    spdlog::warn("logs: the shipper thread did not finish draining in time");
  }
  // Finish on the shipper thread: stop the outputs, keep what is left.
  auto final_done = std::make_shared<std::promise<void>>();
  auto final_future = final_done->get_future();
  asio::post(io_, [this, final_done] {
    uint64_t left = 0;
    for (auto& o : outputs_) {
      o->shutdown();
      left += o->buffer().batches();
    }
    for (auto& b : buffers_) b->spill_all();
    save_checkpoints(true);
    state_->journal_clear();
    if (left > 0) {
      spdlog::warn(
          "logs: stopped with {} batches undelivered (files are read again from their "
          "checkpoints; disk buffers keep theirs)",
          left);
    }
    final_done->set_value();
  });
  if (final_future.wait_until(deadline + std::chrono::seconds(2)) != std::future_status::ready) {
    spdlog::warn("logs: the shipper thread did not stop in time");
  }
  io_.stop();
  thread_.join();
}

void Pipeline::make_record(InputRuntime& input, LineState& state, Batch& b, std::string_view text,
                           std::string_view source) {
  b.begin(chunk_now_ns_);
  const bool parsed = !input.parsers.empty() && input.parsers.parse(text, b);
  if (!parsed) {
    if (!input.parsers.empty()) bump(input.counters.parse_failures);
    b.add("message", text, ValueKind::kString);
  }
  const std::string& key = input.config.kind == InputConfig::Kind::kFile
                               ? input.config.file.path_key
                               : input.config.app_stdout.stream_key;
  if (!key.empty()) b.add(key, source, ValueKind::kString);
  if (!input.filters.empty()) {
    const Filters::Verdict v = input.filters.apply(b, state.filter_state, chunk_now_ns_);
    if (v != Filters::Verdict::kKeep) {
      b.drop_last();
      bump(v == Filters::Verdict::kGrep      ? input.counters.dropped_grep
           : v == Filters::Verdict::kSampled ? input.counters.dropped_sampled
                                             : input.counters.dropped_rate_limited);
      return;
    }
  }
  bump(input.counters.records);
}

void Pipeline::emit_line(InputRuntime& input, LineState& state, Batch& b, std::string_view line,
                         uint64_t line_start, std::string_view source) {
  const InputConfig& c = input.config;
  if (c.cri_partials) {
    CriLine cri;
    if (split_cri(line, cri)) {
      if (cri.partial) {
        if (state.cri.empty()) state.cri_start = line_start;
        state.cri.append(cri.message);
        return;
      }
      if (!state.cri.empty()) {
        state.cri.append(cri.message);
        scratch2_.clear();
        if (input.parsers.has_cri()) {
          scratch2_.append(cri.time);
          scratch2_ += ' ';
          scratch2_.append(cri.stream);
          scratch2_.append(" F ");
        }
        scratch2_.append(state.cri);
        state.cri.clear();
        line_start = state.cri_start;
        const size_t size = scratch2_.size();
        scratch2_.append(kPadding, ' ');
        line = std::string_view(scratch2_.data(), size);
      } else if (!input.parsers.has_cri()) {
        line = cri.message;
      }
    }
  }
  if (c.multiline.mode == MultilineConfig::Mode::kNone) {
    make_record(input, state, b, line, source);
    return;
  }
  const bool was_pending = state.multiline.pending();
  bool flushed = false;
  state.multiline.feed(line, steady_ms(), [&](std::string_view text, uint32_t lines) {
    flushed = true;
    if (lines > 1) bump(input.counters.multiline_records);
    make_record(input, state, b, text, source);
  });
  if (state.multiline.pending() && (!was_pending || flushed)) state.multiline_start = line_start;
}

void Pipeline::feed(InputRuntime& input, LineState& state, BatchBuilder& builder, const char* data,
                    size_t size, uint64_t end_offset, bool eof, std::string_view source) {
  if (!builder.batch) {
    builder.batch = std::make_shared<Batch>();
    builder.batch->tag = input.config.tag;
    builder.batch->arena.reserve(size + size / 4 + 64);
    builder.batch->records.reserve(input.last_records + input.last_records / 8);
    builder.batch->fields.reserve(input.last_fields + input.last_fields / 8);
  }
  Batch& b = *builder.batch;
  chunk_now_ns_ = now_ns();
  const uint64_t max_line = input.config.kind == InputConfig::Kind::kFile
                                ? input.config.file.max_line_size
                                : input.config.app_stdout.max_line_size;
  const bool truncate =
      input.config.kind == InputConfig::Kind::kFile && input.config.file.truncate_long_lines;
  const uint64_t start_offset = end_offset - size;
  const char* p = data;
  const char* end = data + size;
  // One UTF-8 check for all complete lines; per line only when it fails.
  const char* last_nl = static_cast<const char*>(::memrchr(data, '\n', size));
  const bool all_valid = last_nl == nullptr || valid_utf8(std::string_view(data, last_nl - data));
  auto emit = [&](std::string_view line, uint64_t line_start) {
    if (!all_valid && !valid_utf8(line)) {
      scratch_.clear();
      append_utf8_replacing(scratch_, line);
      bump(input.counters.invalid_utf8);
      const size_t n = scratch_.size();
      scratch_.append(kPadding, ' ');
      line = std::string_view(scratch_.data(), n);
    }
    emit_line(input, state, b, line, line_start, source);
  };
  auto emit_long = [&](const char* from, size_t len) {
    // Split: pieces of max_line; truncate: the first piece only.
    uint64_t at = start_offset + static_cast<uint64_t>(from - data);
    while (len > max_line) {
      std::string piece;
      append_utf8_replacing(piece, std::string_view(from, max_line));
      const size_t n = piece.size();
      piece.append(kPadding, ' ');
      emit_line(input, state, b, std::string_view(piece.data(), n), at, source);
      if (truncate) {
        bump(input.counters.long_lines_truncated);
        return size_t{0};
      }
      bump(input.counters.long_lines_split);
      from += max_line;
      len -= max_line;
      at += max_line;
    }
    return len;
  };
  uint64_t lines = 0;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (nl == nullptr) break;
    const uint64_t line_start = start_offset + static_cast<uint64_t>(p - data);
    const uint64_t line_end = start_offset + static_cast<uint64_t>(nl + 1 - data);
    ++lines;
    if (state.discarding) {
      state.discarding = false;  // the rest of a truncated line
      p = nl + 1;
      continue;
    }
    size_t len = static_cast<size_t>(nl - p);
    if (len > 0 && p[len - 1] == '\r') --len;
    if (len > max_line) {
      const size_t rest = emit_long(p, len);
      if (rest > 0) emit(std::string_view(p + len - rest, rest), line_end - rest - 1);
    } else {
      emit(std::string_view(p, len), line_start);
    }
    if (line_end <= state.replay_until) bump(input.counters.replayed_lines);
    p = nl + 1;
  }
  bump(input.counters.lines, lines);
  size_t left = static_cast<size_t>(end - p);
  if (state.discarding) {
    left = 0;  // still inside a truncated line
  } else if (left > 0 && eof) {
    emit(std::string_view(p, left), start_offset + static_cast<uint64_t>(p - data));
    bump(input.counters.lines);
    left = 0;
  } else if (left > max_line) {
    const size_t rest = emit_long(p, left);
    if (truncate) {
      state.discarding = true;
      left = 0;
    } else {
      p = end - rest;
      left = rest;
    }
  }
  state.partial.assign(end - left, left);
}

void Pipeline::flush_expired(InputRuntime& input, LineState& state, BatchBuilder& builder,
                             uint64_t end_offset, bool force, std::string_view source) {
  if (!state.multiline.pending()) return;
  if (!force && !state.multiline.expired(steady_ms())) return;
  if (!builder.batch) {
    builder.batch = std::make_shared<Batch>();
    builder.batch->tag = input.config.tag;
  }
  chunk_now_ns_ = now_ns();
  state.multiline.flush([&](std::string_view text, uint32_t lines) {
    if (lines > 1) bump(input.counters.multiline_records);
    make_record(input, state, *builder.batch, text, source);
  });
}

void Pipeline::flush(InputRuntime& input, LineState& state, BatchBuilder& builder,
                     uint64_t end_offset) {
  uint64_t safe = end_offset - std::min<uint64_t>(end_offset, state.partial.size());
  if (state.multiline.pending()) safe = std::min(safe, state.multiline_start);
  if (!state.cri.empty()) safe = std::min(safe, state.cri_start);
  std::shared_ptr<Tracker> tracker = builder.tracker;
  std::shared_ptr<Batch> b = std::move(builder.batch);
  builder.batch.reset();
  if (!tracker) return;
  if (!b || b->empty()) {
    // Nothing to deliver (filtered, or held by multiline): the offset moves
    // once everything before it is acknowledged.
    if (safe > tracker->committed) tracker->acked(tracker->add(safe));
    return;
  }
  input.last_records = b->records.size();
  input.last_fields = b->fields.size();
  b->seq = tracker->add(safe);
  b->sink = tracker;
  b->pending = static_cast<int>(input.outputs.size());
  if (b->pending == 0) {
    b->release();
    return;
  }
  for (Output* o : input.outputs) {
    o->buffer().push(b);
    o->wake();
  }
}

std::string Pipeline::status_json() {
  auto result = std::make_shared<std::promise<std::string>>();
  auto future = result->get_future();
  asio::post(io_, [this, result] {
    std::string b = "{\"state_dir\":";
    core::append_json_string(b, config_.state_dir);
    b += ",\"inputs\":[";
    bool first = true;
    for (auto& f : files_) {
      if (!first) b += ',';
      first = false;
      b += "{\"name\":";
      core::append_json_string(b, f->input().config.name);
      b += ",\"type\":\"file\",\"files\":";
      f->status_json(b);
      b += '}';
    }
    if (stdout_) {
      if (!first) b += ',';
      b += "{\"name\":";
      core::append_json_string(b, stdout_->input().config.name);
      b += ",\"type\":\"app_stdout\",\"streams\":";
      stdout_->status_json(b);
      b += '}';
    }
    b += "],\"outputs\":[";
    for (size_t i = 0; i < outputs_.size(); ++i) {
      Output& o = *outputs_[i];
      if (i > 0) b += ',';
      b += "{\"name\":";
      core::append_json_string(b, o.config().name);
      b += fmt::format(
          ",\"queue_batches\":{},\"memory_bytes\":{},\"disk_bytes\":{},\"full\":{},"
          "\"connected\":{},\"sent\":{},\"retries\":{},\"dead_letter\":{},\"last_error\":",
          o.buffer().batches(), o.buffer().memory_bytes(), o.buffer().disk_bytes(),
          o.buffer().full() ? "true" : "false", o.connected() ? "true" : "false",
          get(o.counters().sent), get(o.counters().retries), get(o.counters().dead_letter));
      core::append_json_string(b, o.last_error());
      b += '}';
    }
    b += "]}";
    result->set_value(std::move(b));
  });
  if (future.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    return "{\"error\":\"the shipper thread is busy\"}";
  }
  return future.get();
}

}  // namespace sidecar::logship
