#include "tracing/config.h"

#include <fmt/format.h>

#include "config/reader.h"
#include "module/module.h"

namespace sidecar::tracing {

module::Module* create_module(const config::Section& section, module::Host& host);

namespace {

void load_exporter(config::Reader& r, const YAML::Node& n, const std::string& where,
                   ExporterConfig& e) {
  e.enabled = true;
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"endpoint", "batch_timeout", "max_batch", "compression", "timeout", "max_retries"});
  if (auto v = n["endpoint"]) {
    if (r.get_string(v, where + ".endpoint", e.endpoint) && !e.endpoint.starts_with("http://") &&
        !e.endpoint.starts_with("https://")) {
      r.error(v, where + ".endpoint must be an http:// or https:// URL");
    }
  } else {
    r.error(n, where + " needs endpoint");
  }
  if (auto v = n["batch_timeout"]) {
    if (r.get_duration(v, where + ".batch_timeout", e.batch_timeout) &&
        e.batch_timeout.count() == 0) {
      r.error(v, where + ".batch_timeout must be more than 0");
    }
  }
  if (auto v = n["max_batch"]) r.get_count(v, where + ".max_batch", e.max_batch, 1, 65536);
  if (auto v = n["compression"]) {
    std::string c;
    if (r.get_enum(v, where + ".compression", c, {"gzip", "none"})) e.gzip = c == "gzip";
  }
  if (auto v = n["timeout"]) {
    if (r.get_duration(v, where + ".timeout", e.timeout) && e.timeout.count() == 0) {
      r.error(v, where + ".timeout must be more than 0");
    }
  }
  if (auto v = n["max_retries"]) r.get_count(v, where + ".max_retries", e.max_retries, 0, 10);
}

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& r) {
  auto c = std::make_shared<TracingConfig>();
  if (!r.is_map(node, "tracing")) return c;
  r.check_keys(node, "tracing",
               {"service_name", "sampling", "propagation", "max_queue_size", "otlp", "zipkin"});
  if (auto v = node["service_name"]) {
    if (r.get_string(v, "tracing.service_name", c->service_name) && c->service_name.empty()) {
      r.error(v, "tracing.service_name must not be empty");
    }
  }
  if (auto s = node["sampling"]) {
    if (r.is_map(s, "tracing.sampling")) {
      r.check_keys(s, "tracing.sampling", {"ratio", "parent_based", "sample_errors"});
      if (auto v = s["ratio"]) r.get_double(v, "tracing.sampling.ratio", c->sampling.ratio, 0, 1);
      if (auto v = s["parent_based"]) {
        r.get_bool(v, "tracing.sampling.parent_based", c->sampling.parent_based);
      }
      if (auto v = s["sample_errors"]) {
        r.get_bool(v, "tracing.sampling.sample_errors", c->sampling.sample_errors);
      }
    }
  }
  if (auto v = node["propagation"]) {
    std::vector<std::string> names;
    if (r.get_strings(v, "tracing.propagation", names)) {
      c->tracecontext = c->b3 = false;
      for (size_t i = 0; i < names.size(); ++i) {
        const YAML::Node at = v.IsSequence() ? v[i] : v;
        if (names[i] == "tracecontext") {
          c->tracecontext = true;
        } else if (names[i] == "b3") {
          c->b3 = true;
        } else {
          r.error(at, fmt::format("tracing.propagation: unknown format '{}' (tracecontext, b3)",
                                  names[i]));
        }
      }
      if (names.empty()) r.error(v, "tracing.propagation must name at least one format");
    }
  }
  if (auto v = node["max_queue_size"]) {
    r.get_count(v, "tracing.max_queue_size", c->max_queue_size, 1, 1u << 20);
  }
  if (auto v = node["otlp"]) load_exporter(r, v, "tracing.otlp", c->otlp);
  if (auto v = node["zipkin"]) load_exporter(r, v, "tracing.zipkin", c->zipkin);
  if (!c->otlp.enabled && !c->zipkin.enabled) {
    r.error(node, "tracing needs an exporter: otlp, zipkin or both");
  }
  return c;
}

}  // namespace

void register_module() { module::register_kind({"tracing", parse, create_module}); }

}  // namespace sidecar::tracing
