// Writes metrics in the Prometheus text format 0.0.4, OpenMetrics 1.0, or
// JSON (the admin /stats endpoint), from one description of the metrics.
//
// Names follow Prometheus conventions: base units (seconds, bytes), counters
// end in `_total` (OpenMetrics declares their family without it).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sidecar::stats {

enum class MetricType { kCounter, kGauge, kHistogram };

struct Label {
  std::string_view name;
  std::string_view value;
};

class MetricWriter {
 public:
  virtual ~MetricWriter() = default;
  // Starts a metric family; the samples that follow belong to it.
  virtual void family(std::string_view name, MetricType type, std::string_view help) = 0;
  virtual void sample(std::span<const Label> labels, double value) = 0;
  // A histogram: `buckets[i]` observations <= bounds[i] (not cumulative),
  // buckets[n] above the last bound; `sum` in the family's unit.
  virtual void histogram(std::span<const Label> labels, const double* bounds,
                         const uint64_t* buckets, size_t n, double sum, uint64_t count) = 0;
};

// Prometheus text 0.0.4, or OpenMetrics 1.0 with `openmetrics`. Appends to
// `out`; call finish() once at the end (OpenMetrics needs "# EOF").
class TextWriter : public MetricWriter {
 public:
  TextWriter(std::string& out, bool openmetrics) : out_(out), openmetrics_(openmetrics) {}
  void family(std::string_view name, MetricType type, std::string_view help) override;
  void sample(std::span<const Label> labels, double value) override;
  void histogram(std::span<const Label> labels, const double* bounds, const uint64_t* buckets,
                 size_t n, double sum, uint64_t count) override;
  void finish();

  static constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";
  static constexpr std::string_view kOpenMetricsContentType =
      "application/openmetrics-text; version=1.0.0; charset=utf-8";
  // Whether an Accept header asks for OpenMetrics.
  static bool wants_openmetrics(std::string_view accept);

 private:
  void labels(std::span<const Label> labels, std::string_view extra_name = {},
              std::string_view extra_value = {});
  std::string& out_;
  const bool openmetrics_;
  std::string name_;
  std::string prefix_;           // scratch: "<name>_bucket{<labels>,le=\""
  std::vector<std::string> le_;  // the bucket bounds as text
};

// {"metrics":[{"name":..,"type":..,"help":..,"samples":[{"labels":{..},"value":..}]}]}
// Histogram samples carry "count", "sum" and cumulative "buckets" by bound.
class JsonWriter : public MetricWriter {
 public:
  explicit JsonWriter(std::string& out);
  void family(std::string_view name, MetricType type, std::string_view help) override;
  void sample(std::span<const Label> labels, double value) override;
  void histogram(std::span<const Label> labels, const double* bounds, const uint64_t* buckets,
                 size_t n, double sum, uint64_t count) override;
  void finish();

 private:
  void begin_sample(std::span<const Label> labels);
  std::string& out_;
  bool first_family_ = true;
  bool first_sample_ = true;
};

}  // namespace sidecar::stats
