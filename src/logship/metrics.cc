// The pipeline's metrics (docs/logship.md "Metrics"), Prometheus naming.
#include <future>

#include <boost/asio/post.hpp>

#include "logship/file_input.h"
#include "logship/output.h"
#include "logship/pipeline.h"
#include "logship/stdout_input.h"
#include "stats/metric_writer.h"

namespace sidecar::logship {

void Pipeline::collect(stats::MetricWriter& w) {
  using stats::Label;
  using stats::MetricType;
  // Gauges live on the shipper thread: take a snapshot there.
  struct OutputGauges {
    uint64_t memory = 0, disk = 0, batches = 0, full_events = 0, disk_errors = 0, dropped = 0;
  };
  struct Snapshot {
    std::vector<uint64_t> lag;
    std::vector<uint64_t> open_files;
    std::vector<OutputGauges> outputs;
  };
  auto result = std::make_shared<std::promise<Snapshot>>();
  auto future = result->get_future();
  boost::asio::post(io_, [this, result] {
    Snapshot s;
    for (auto& in : inputs_) {
      uint64_t lag = 0, open = 0;
      for (auto& f : files_) {
        if (&f->input() != in.get()) continue;
        lag += f->lag_bytes();
        open += f->open_files();
      }
      s.lag.push_back(lag);
      s.open_files.push_back(open);
    }
    for (auto& o : outputs_) {
      const auto& c = o->buffer().counters();
      s.outputs.push_back({o->buffer().memory_bytes(), o->buffer().disk_bytes(),
                           o->buffer().batches(), c.full_events, c.disk_errors, c.dropped_records});
    }
    result->set_value(std::move(s));
  });
  Snapshot snap;
  if (future.wait_for(std::chrono::seconds(2)) == std::future_status::ready) snap = future.get();

  auto per_input = [&](std::string_view name, MetricType type, std::string_view help, auto value) {
    w.family(name, type, help);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const Label labels[] = {{"input", inputs_[i]->config.name}};
      w.sample(labels, static_cast<double>(value(i)));
    }
  };
  per_input("sidecar_logs_input_lines_total", MetricType::kCounter, "Lines read.",
            [&](size_t i) { return get(inputs_[i]->counters.lines); });
  per_input("sidecar_logs_input_bytes_total", MetricType::kCounter, "Bytes read.",
            [&](size_t i) { return get(inputs_[i]->counters.bytes); });
  per_input("sidecar_logs_input_records_total", MetricType::kCounter,
            "Records made (after multiline and filters).",
            [&](size_t i) { return get(inputs_[i]->counters.records); });
  per_input("sidecar_logs_input_parse_failures_total", MetricType::kCounter,
            "Lines no parser accepted (kept as message).",
            [&](size_t i) { return get(inputs_[i]->counters.parse_failures); });
  per_input("sidecar_logs_input_invalid_utf8_total", MetricType::kCounter,
            "Lines with invalid UTF-8 (bytes replaced with U+FFFD).",
            [&](size_t i) { return get(inputs_[i]->counters.invalid_utf8); });
  per_input("sidecar_logs_input_multiline_records_total", MetricType::kCounter,
            "Records joined from more than one line.",
            [&](size_t i) { return get(inputs_[i]->counters.multiline_records); });
  per_input("sidecar_logs_input_replayed_lines_total", MetricType::kCounter,
            "Lines read again after an unclean stop: they may have been delivered before.",
            [&](size_t i) { return get(inputs_[i]->counters.replayed_lines); });
  if (!snap.lag.empty()) {
    per_input("sidecar_logs_lag_bytes", MetricType::kGauge,
              "Bytes of the open files not yet acknowledged by every output.",
              [&](size_t i) { return snap.lag[i]; });
    per_input("sidecar_logs_open_files", MetricType::kGauge, "Files open for reading.",
              [&](size_t i) { return snap.open_files[i]; });
  }
  w.family("sidecar_logs_long_lines_total", MetricType::kCounter,
           "Lines longer than max_line_size, by what was done.");
  for (const auto& in : inputs_) {
    const Label split[] = {{"input", in->config.name}, {"action", "split"}};
    w.sample(split, static_cast<double>(get(in->counters.long_lines_split)));
    const Label trunc[] = {{"input", in->config.name}, {"action", "truncated"}};
    w.sample(trunc, static_cast<double>(get(in->counters.long_lines_truncated)));
  }

  w.family("sidecar_logs_output_records_total", MetricType::kCounter,
           "Records by outcome: sent (acknowledged), dead_letter (rejected as invalid).");
  for (const auto& o : outputs_) {
    const Label sent[] = {{"output", o->config().name}, {"status", "sent"}};
    w.sample(sent, static_cast<double>(get(o->counters().sent)));
    const Label dead[] = {{"output", o->config().name}, {"status", "dead_letter"}};
    w.sample(dead, static_cast<double>(get(o->counters().dead_letter)));
  }
  w.family("sidecar_logs_output_bytes_total", MetricType::kCounter,
           "Bytes sent and acknowledged (before gzip).");
  for (const auto& o : outputs_) {
    const Label l[] = {{"output", o->config().name}};
    w.sample(l, static_cast<double>(get(o->counters().bytes)));
  }
  w.family("sidecar_logs_retries_total", MetricType::kCounter,
           "Deliveries retried after a failure.");
  for (const auto& o : outputs_) {
    const Label l[] = {{"output", o->config().name}};
    w.sample(l, static_cast<double>(get(o->counters().retries)));
  }
  w.family("sidecar_logs_output_errors_total", MetricType::kCounter,
           "Failed deliveries (connect, write, timeout, HTTP errors).");
  for (const auto& o : outputs_) {
    const Label l[] = {{"output", o->config().name}};
    w.sample(l, static_cast<double>(get(o->counters().errors)));
  }
  if (!snap.outputs.empty()) {
    w.family("sidecar_logs_buffer_bytes", MetricType::kGauge,
             "Bytes queued for an output, in memory and in chunk files.");
    for (size_t i = 0; i < outputs_.size(); ++i) {
      const Label mem[] = {{"output", outputs_[i]->config().name}, {"type", "memory"}};
      w.sample(mem, static_cast<double>(snap.outputs[i].memory));
      const Label disk[] = {{"output", outputs_[i]->config().name}, {"type", "disk"}};
      w.sample(disk, static_cast<double>(snap.outputs[i].disk));
    }
    w.family("sidecar_logs_buffer_full_total", MetricType::kCounter,
             "Times an output's buffer became full (inputs wait: block).");
    for (size_t i = 0; i < outputs_.size(); ++i) {
      const Label l[] = {{"output", outputs_[i]->config().name}};
      w.sample(l, static_cast<double>(snap.outputs[i].full_events));
    }
    w.family("sidecar_logs_buffer_write_errors_total", MetricType::kCounter,
             "Chunk files that could not be written (a full disk).");
    for (size_t i = 0; i < outputs_.size(); ++i) {
      const Label l[] = {{"output", outputs_[i]->config().name}};
      w.sample(l, static_cast<double>(snap.outputs[i].disk_errors));
    }
  }
  w.family("sidecar_logs_dropped_total", MetricType::kCounter,
           "Records (app_output_full: lines) dropped, by reason.");
  for (const auto& in : inputs_) {
    const std::pair<const char*, const Counter*> reasons[] = {
        {"grep", &in->counters.dropped_grep},
        {"sampled", &in->counters.dropped_sampled},
        {"rate_limited", &in->counters.dropped_rate_limited},
        {"app_output_full", &in->counters.dropped_buffer_full}};
    for (const auto& [reason, c] : reasons) {
      const Label l[] = {{"input", in->config.name}, {"output", ""}, {"reason", reason}};
      w.sample(l, static_cast<double>(get(*c)));
    }
  }
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const auto& o = outputs_[i];
    const Label retries[] = {
        {"input", ""}, {"output", o->config().name}, {"reason", "max_retries"}};
    w.sample(retries, static_cast<double>(get(o->counters().dropped_retries)));
    const Label oldest[] = {{"input", ""}, {"output", o->config().name}, {"reason", "drop_oldest"}};
    w.sample(oldest, snap.outputs.empty() ? 0.0 : static_cast<double>(snap.outputs[i].dropped));
  }
}

}  // namespace sidecar::logship
