#include "stats/metric_writer.h"

#include <fmt/format.h>

#include "core/json.h"

namespace sidecar::stats {
namespace {

std::string_view type_name(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void append_number(std::string& out, double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v < 9e15 && v > -9e15) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<int64_t>(v));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

// Label values escape backslash, double quote and newline (text format).
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_help(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

}  // namespace

bool TextWriter::wants_openmetrics(std::string_view accept) {
  return accept.find("application/openmetrics-text") != std::string_view::npos;
}

void TextWriter::family(std::string_view name, MetricType type, std::string_view help) {
  name_.assign(name);
  std::string_view family = name;
  if (openmetrics_ && type == MetricType::kCounter && family.ends_with("_total")) {
    family.remove_suffix(6);
  }
  out_.append("# HELP ").append(family).append(" ");
  append_help(out_, help);
  out_.append("\n# TYPE ").append(family).append(" ").append(type_name(type)).append("\n");
}

void TextWriter::labels(std::span<const Label> labels, std::string_view extra_name,
                        std::string_view extra_value) {
  if (labels.empty() && extra_name.empty()) return;
  out_ += '{';
  bool first = true;
  for (const Label& l : labels) {
    if (!first) out_ += ',';
    first = false;
    out_.append(l.name).append("=\"");
    append_label_value(out_, l.value);
    out_ += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out_ += ',';
    out_.append(extra_name).append("=\"").append(extra_value).append("\"");
  }
  out_ += '}';
}

void TextWriter::sample(std::span<const Label> l, double value) {
  out_.append(name_);
  labels(l);
  out_ += ' ';
  append_number(out_, value);
  out_ += '\n';
}

void TextWriter::histogram(std::span<const Label> l, const double* bounds, const uint64_t* buckets,
                           size_t n, double sum, uint64_t count) {
  uint64_t cumulative = 0;
  char le[32];
  for (size_t i = 0; i <= n; ++i) {
    cumulative += buckets[i];
    std::string_view le_value = "+Inf";
    if (i < n) {
      auto r = fmt::format_to_n(le, sizeof(le) - 1, "{}", bounds[i]);
      le_value = std::string_view(le, r.size);
    }
    out_.append(name_).append("_bucket");
    labels(l, "le", le_value);
    out_ += ' ';
    fmt::format_to(std::back_inserter(out_), "{}\n", cumulative);
  }
  out_.append(name_).append("_sum");
  labels(l);
  out_ += ' ';
  append_number(out_, sum);
  out_.append("\n").append(name_).append("_count");
  labels(l);
  fmt::format_to(std::back_inserter(out_), " {}\n", count);
}

void TextWriter::finish() {
  if (openmetrics_) out_.append("# EOF\n");
}

JsonWriter::JsonWriter(std::string& out) : out_(out) { out_.append("{\"metrics\":["); }

void JsonWriter::family(std::string_view name, MetricType type, std::string_view help) {
  if (!first_family_) out_.append("]},");
  first_family_ = false;
  first_sample_ = true;
  out_.append("{\"name\":");
  core::append_json_string(out_, name);
  out_.append(",\"type\":\"").append(type_name(type)).append("\",\"help\":");
  core::append_json_string(out_, help);
  out_.append(",\"samples\":[");
}

void JsonWriter::begin_sample(std::span<const Label> labels) {
  if (!first_sample_) out_ += ',';
  first_sample_ = false;
  out_.append("{\"labels\":{");
  bool first = true;
  for (const Label& l : labels) {
    if (!first) out_ += ',';
    first = false;
    core::append_json_string(out_, l.name);
    out_ += ':';
    core::append_json_string(out_, l.value);
  }
  out_.append("},");
}

void JsonWriter::sample(std::span<const Label> labels, double value) {
  begin_sample(labels);
  out_.append("\"value\":");
  append_number(out_, value);
  out_ += '}';
}

void JsonWriter::histogram(std::span<const Label> labels, const double* bounds,
                           const uint64_t* buckets, size_t n, double sum, uint64_t count) {
  begin_sample(labels);
  fmt::format_to(std::back_inserter(out_), "\"count\":{},\"sum\":", count);
  append_number(out_, sum);
  out_.append(",\"buckets\":{");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= n; ++i) {
    cumulative += buckets[i];
    if (i > 0) out_ += ',';
    if (i < n) {
      fmt::format_to(std::back_inserter(out_), "\"{}\":{}", bounds[i], cumulative);
    } else {
      fmt::format_to(std::back_inserter(out_), "\"+Inf\":{}", cumulative);
    }
  }
  out_.append("}}");
}

void JsonWriter::finish() {
  if (!first_family_) out_.append("]}");
  out_.append("]}\n");
}

}  // namespace sidecar::stats
