// The tracing module: publishes the tracer that the workers' streams record
// into, loads the exporter (libsidecar-tracing.so), serves GET /tracing and
// the tracing metrics.
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/json.h"
#include "core/shared_object.h"
#include "module/module.h"
#include "stats/metric_writer.h"
#include "tracing/exporter.h"
#include "tracing/tracer.h"

namespace sidecar::tracing {
namespace {

// Tracers live until exit (a worker may still hold one, tracer.h): this
// list keeps them reachable, so that leak checkers see them as owned.
std::vector<Tracer*>& kept_tracers() {
  static auto* tracers = new std::vector<Tracer*>;
  return *tracers;
}

class TracingModule final : public module::Module {
 public:
  explicit TracingModule(std::shared_ptr<const TracingConfig> config) {
    create_ =
        reinterpret_cast<CreateExporterFn>(core::load_symbol("tracing", kCreateExporterSymbol));
    make_tracer(std::move(config));
  }

  ~TracingModule() override {
    for (Retired& r : retired_) {
      if (r.stopping.joinable()) r.stopping.join();
    }
  }

  const std::string& key() const override { return key_; }

  void start() override {
    exporter_->start();
    set_active_tracer(tracer_);
    const TracingConfig& c = *tracer_->config;
    spdlog::info("tracing: sampling ratio {}, exporting to{}{}", c.sampling.ratio,
                 c.otlp.enabled ? " otlp " + c.otlp.endpoint : "",
                 c.zipkin.enabled ? " zipkin " + c.zipkin.endpoint : "");
  }

  // A changed section gets a tracer and exporter of its own (the queue and
  // the export thread are sized by their config): new requests record into
  // it at once, and the old exporter sends what it still holds, on a thread
  // of its own, within kRetireTime.
  bool reload(const config::Section& section) override {
    auto next = std::static_pointer_cast<const TracingConfig>(section.typed);
    if (*next == *tracer_->config) return true;
    Retired old{tracer_, std::move(exporter_), {}};
    make_tracer(std::move(next));
    exporter_->start();
    set_active_tracer(tracer_);
    Exporter* e = old.exporter.get();
    old.stopping = std::thread([e] { e->stop(std::chrono::steady_clock::now() + kRetireTime); });
    retired_.push_back(std::move(old));
    const TracingConfig& c = *tracer_->config;
    spdlog::info("tracing reloaded: sampling ratio {}, exporting to{}{}", c.sampling.ratio,
                 c.otlp.enabled ? " otlp " + c.otlp.endpoint : "",
                 c.zipkin.enabled ? " zipkin " + c.zipkin.endpoint : "");
    return true;
  }

  void stop(std::chrono::steady_clock::time_point deadline) override {
    set_active_tracer(nullptr);
    exporter_->stop(deadline);
    for (Retired& r : retired_) {
      if (r.stopping.joinable()) r.stopping.join();
    }
  }

  void collect(stats::MetricWriter& w) const override {
    using stats::MetricType;
    // Counters add up every tracer this module had (one per reload).
    uint64_t queued = tracer_->sink.queued(), dropped = tracer_->sink.dropped();
    for (const Retired& r : retired_) {
      queued += r.tracer->sink.queued();
      dropped += r.tracer->sink.dropped();
    }
    w.family("sidecar_tracing_spans_total", MetricType::kCounter,
             "Spans the data path queued for export.");
    w.sample({}, static_cast<double>(queued));
    w.family("sidecar_tracing_spans_dropped_total", MetricType::kCounter,
             "Spans dropped because the export queue was full.");
    w.sample({}, static_cast<double>(dropped));
    w.family("sidecar_tracing_queue_spans", MetricType::kGauge, "Spans waiting for export.");
    w.sample({}, static_cast<double>(tracer_->sink.size()));
    struct Row {
      const char* name;
      bool zipkin;
    };
    std::vector<std::pair<Row, ExporterStats>> all;
    for (const Row r : {Row{"otlp", false}, Row{"zipkin", true}}) {
      auto enabled = [&](const Tracer& t) {
        return r.zipkin ? t.config->zipkin.enabled : t.config->otlp.enabled;
      };
      bool any = enabled(*tracer_);
      ExporterStats sum = any ? exporter_->stats(r.zipkin) : ExporterStats{};
      for (const Retired& old : retired_) {
        if (!enabled(*old.tracer)) continue;
        any = true;
        const ExporterStats s = old.exporter->stats(r.zipkin);
        sum.spans_exported += s.spans_exported;
        sum.spans_failed += s.spans_failed;
        sum.requests += s.requests;
        sum.retries += s.retries;
      }
      if (any) all.emplace_back(r, sum);
    }
    auto emit = [&](const char* family, const char* help, uint64_t ExporterStats::*field) {
      w.family(family, MetricType::kCounter, help);
      for (const auto& [r, s] : all) {
        const stats::Label l[] = {{"exporter", r.name}};
        w.sample(l, static_cast<double>(s.*field));
      }
    };
    emit("sidecar_tracing_spans_exported_total", "Spans the collector accepted.",
         &ExporterStats::spans_exported);
    emit("sidecar_tracing_spans_failed_total", "Spans given up on after the export retries.",
         &ExporterStats::spans_failed);
    emit("sidecar_tracing_export_requests_total", "Export requests sent, retries included.",
         &ExporterStats::requests);
    emit("sidecar_tracing_export_retries_total", "Export requests that were retries.",
         &ExporterStats::retries);
  }

  std::string status_json() const override {
    const TracingConfig& c = *tracer_->config;
    std::string b = "{\"service_name\":";
    core::append_json_string(b, c.service_name);
    b += fmt::format(
        ",\"sampling\":{{\"ratio\":{},\"parent_based\":{},\"sample_errors\":{}}}"
        ",\"queue\":{{\"size\":{},\"capacity\":{},\"queued\":{},\"dropped\":{}}},\"exporters\":{{",
        c.sampling.ratio, c.sampling.parent_based, c.sampling.sample_errors, tracer_->sink.size(),
        tracer_->sink.capacity(), tracer_->sink.queued(), tracer_->sink.dropped());
    bool first = true;
    for (bool zipkin : {false, true}) {
      const ExporterConfig& e = zipkin ? c.zipkin : c.otlp;
      if (!e.enabled) continue;
      const ExporterStats s = exporter_->stats(zipkin);
      if (!first) b += ',';
      first = false;
      b += zipkin ? "\"zipkin\":{\"endpoint\":" : "\"otlp\":{\"endpoint\":";
      core::append_json_string(b, e.endpoint);
      b += fmt::format(",\"spans_exported\":{},\"spans_failed\":{},\"requests\":{},\"retries\":{}",
                       s.spans_exported, s.spans_failed, s.requests, s.retries);
      b += ",\"last_error\":";
      core::append_json_string(b, s.last_error);
      b += '}';
    }
    b += "}}";
    return b;
  }

 private:
  // What an exporter replaced by a reload needs until it has sent its queue.
  struct Retired {
    Tracer* tracer;
    std::unique_ptr<Exporter> exporter;
    std::thread stopping;
  };
  static constexpr auto kRetireTime = std::chrono::seconds(5);

  void make_tracer(std::shared_ptr<const TracingConfig> config) {
    // Kept until exit: a worker may still hold it (tracer.h).
    tracer_ = new Tracer(std::move(config));
    kept_tracers().push_back(tracer_);
    exporter_.reset(create_(tracer_->config.get(), &tracer_->sink));
  }

  const std::string key_ = "tracing";
  CreateExporterFn create_ = nullptr;
  Tracer* tracer_ = nullptr;
  std::unique_ptr<Exporter> exporter_;
  std::vector<Retired> retired_;
};

}  // namespace

module::Module* create_module(const config::Section& section, module::Host&) {
  return new TracingModule(std::static_pointer_cast<const TracingConfig>(section.typed));
}

}  // namespace sidecar::tracing
