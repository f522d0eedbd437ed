#include "stats/metric_writer.h"

#include <charconv>

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
  size_t start = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(v.substr(start, i - start));
    out.append(c == '\\' ? "\\\\" : c == '"' ? "\\\"" : "\\n");
    start = i + 1;
  }
  out.append(v.substr(start));
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
  // The "name_bucket{labels," prefix is built once and reused for every
  // bucket: a scrape with a thousand routes writes tens of thousands of lines.
  prefix_.clear();
  prefix_.append(name_).append("_bucket{");
  for (const Label& label : l) {
    prefix_.append(label.name).append("=\"");
    append_label_value(prefix_, label.value);
    prefix_.append("\",");
  }
  prefix_.append("le=\"");
  if (le_.size() != n) {
    le_.clear();
    for (size_t i = 0; i < n; ++i) le_.push_back(fmt::format("{}", bounds[i]));
  }
  uint64_t cumulative = 0;
  char number[24];
  for (size_t i = 0; i <= n; ++i) {
    cumulative += buckets[i];
    out_.append(prefix_).append(i < n ? std::string_view(le_[i]) : std::string_view("+Inf"));
    out_.append("\"} ");
    auto r = std::to_chars(number, number + sizeof(number), cumulative);
    out_.append(number, r.ptr).append("\n");
  }
  // _sum and _count: the same labels without le.
  const std::string_view plain_labels =
      std::string_view(prefix_).substr(name_.size() + 8, prefix_.size() - name_.size() - 8 - 4);
  auto with_labels = [&](std::string_view suffix) {
    out_.append(name_).append(suffix);
    if (!l.empty()) {
      out_ += '{';
      out_.append(plain_labels.substr(0, plain_labels.size() - 1));  // drop the trailing comma
      out_ += '}';
    }
    out_ += ' ';
  };
  with_labels("_sum");
  append_number(out_, sum);
  out_ += '\n';
  with_labels("_count");
  auto r = std::to_chars(number, number + sizeof(number), count);
  out_.append(number, r.ptr).append("\n");
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
