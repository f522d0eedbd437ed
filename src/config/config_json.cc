#include "config/config_json.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include "config/access_log_format.h"
#include "config/balancing.h"
#include "config/route_policy.h"
#include "core/json.h"

namespace sidecar::config {
namespace {

// A small writer that keeps commas and nesting right.
class Json {
 public:
  explicit Json(std::string& out) : out_(out) {}
  Json& open(char c) {
    out_ += c;
    first_ = true;
    return *this;
  }
  Json& close(char c) {
    out_ += c;
    first_ = false;
    return *this;
  }
  Json& key(std::string_view k) {
    comma();
    core::append_json_string(out_, k);
    out_ += ':';
    first_ = true;
    key_ = k;
    return *this;
  }
  // A value that is JSON text already.
  Json& raw(std::string_view v) {
    comma();
    out_ += v;
    first_ = false;
    return *this;
  }
  Json& str(std::string_view v) {
    comma();
    const bool secret = key_.find("password") != std::string_view::npos ||
                        key_.find("secret") != std::string_view::npos ||
                        key_.find("token") != std::string_view::npos ||
                        key_.find("private_key") != std::string_view::npos;
    core::append_json_string(out_, secret ? std::string_view("[redacted]") : v);
    first_ = false;
    return *this;
  }
  Json& num(double v) {
    comma();
    fmt::format_to(std::back_inserter(out_), "{}", v);
    first_ = false;
    return *this;
  }
  Json& boolean(bool v) {
    comma();
    out_ += v ? "true" : "false";
    first_ = false;
    return *this;
  }
  Json& duration(Duration d) { return str(fmt::format("{}ms", d.count())); }
  Json& obj_begin(std::string_view k) { return key(k).open('{'); }
  Json& arr_begin(std::string_view k) { return key(k).open('['); }
  Json& item_begin() {
    comma();
    return open('{');
  }

 private:
  void comma() {
    if (!first_) out_ += ',';
    first_ = true;
  }
  std::string& out_;
  bool first_ = true;
  std::string_view key_;
};

std::string format_tokens(const std::vector<LogToken>& tokens) {
  std::string s;
  for (const LogToken& t : tokens) {
    using K = LogToken::Kind;
    switch (t.kind) {
      case K::kLiteral:
        s += t.text;
        break;
      case K::kMethod:
        s += "%REQ(:METHOD)%";
        break;
      case K::kPath:
        s += "%REQ(:PATH)%";
        break;
      case K::kAuthority:
        s += "%REQ(:AUTHORITY)%";
        break;
      case K::kScheme:
        s += "%REQ(:SCHEME)%";
        break;
      case K::kRequestHeader:
      case K::kResponseHeader:
        s += t.kind == K::kRequestHeader ? "%REQ(" : "%RESP(";
        s += t.text;
        if (!t.fallback.empty()) s += "?" + t.fallback;
        s += ")";
        if (t.max_length != 0) s += fmt::format(":{}", t.max_length);
        s += "%";
        break;
      default:
        s += '%';
        s += log_operator_name(t.kind);
        s += '%';
        break;
    }
  }
  return s;
}

std::string_view matcher_kind(HeaderMatcher::Kind k) {
  switch (k) {
    case HeaderMatcher::Kind::kExact:
      return "exact";
    case HeaderMatcher::Kind::kPrefix:
      return "prefix";
    case HeaderMatcher::Kind::kSuffix:
      return "suffix";
    case HeaderMatcher::Kind::kContains:
      return "contains";
    case HeaderMatcher::Kind::kPresent:
      return "present";
    case HeaderMatcher::Kind::kRegex:
      return "regex";
  }
  return "present";
}

void strings(Json& j, std::string_view key, const std::vector<std::string>& v) {
  j.arr_begin(key);
  for (const std::string& x : v) j.str(x);
  j.close(']');
}

// The health keys of a cluster (config/health_config.h), when set.
void health_json(Json& j, const Cluster& cl) {
  if (!cl.health_checks.empty()) {
    j.arr_begin("health_checks");
    for (const HealthCheck& h : cl.health_checks) {
      j.item_begin();
      if (h.kind == HealthCheck::Kind::kHttp) {
        j.obj_begin("http").key("path").str(h.path).key("host").str(h.host);
        j.arr_begin("expected_statuses");
        for (const auto& [lo, hi] : h.expected_statuses) j.str(fmt::format("{}-{}", lo, hi));
        j.close(']').close('}');
      } else if (h.kind == HealthCheck::Kind::kTcp) {
        j.obj_begin("tcp").key("send").str(h.send).key("expect").str(h.expect).close('}');
      } else {
        j.obj_begin("grpc").key("service_name").str(h.service_name).close('}');
      }
      j.key("interval").duration(h.interval).key("interval_jitter").duration(h.interval_jitter);
      j.key("timeout").duration(h.timeout);
      j.key("unhealthy_threshold").num(h.unhealthy_threshold);
      j.key("healthy_threshold").num(h.healthy_threshold).close('}');
    }
    j.close(']');
  }
  if (cl.outlier_detection.enabled) {
    const OutlierDetection& o = cl.outlier_detection;
    j.obj_begin("outlier_detection").key("consecutive_5xx").num(o.consecutive_5xx);
    j.key("consecutive_gateway_failure").num(o.consecutive_gateway_failure);
    j.key("interval").duration(o.interval).key("base_ejection_time").duration(o.base_ejection_time);
    j.key("max_ejection_time").duration(o.max_ejection_time);
    j.key("max_ejection_percent").num(o.max_ejection_percent).close('}');
  }
  if (cl.discovery.dns.enabled) {
    const DnsDiscovery& d = cl.discovery.dns;
    j.obj_begin("discovery").obj_begin("dns").key("refresh_rate").duration(d.refresh_rate);
    j.key("respect_ttl").boolean(d.respect_ttl);
    j.key("lookup_family")
        .str(d.lookup_family == DnsDiscovery::Family::kV4   ? "v4"
             : d.lookup_family == DnsDiscovery::Family::kV6 ? "v6"
                                                            : "auto");
    j.arr_begin("targets");
    for (const auto& t : d.targets) j.str(fmt::format("{}:{}", t.host, t.port));
    j.close(']').close('}').close('}');
  }
}

}  // namespace

std::string to_json(const Config& c) {
  std::string out;
  Json j(out);
  j.open('{');
  j.key("source").str(c.source);
  j.obj_begin("admin").key("address").str(c.admin.address.to_string()).close('}');
  if (c.workers == 0) {
    j.key("workers").str("auto");
  } else {
    j.key("workers").num(c.workers);
  }
  j.obj_begin("app").key("port").num(c.app.port);
  j.obj_begin("ready")
      .key("configured")
      .boolean(c.app.ready.configured)
      .key("http_path")
      .str(c.app.ready.http_path)
      .key("period")
      .duration(c.app.ready.period)
      .key("timeout")
      .duration(c.app.ready.timeout)
      .close('}');
  j.key("restart").str(c.app.restart == RestartPolicy::kNever       ? "never"
                       : c.app.restart == RestartPolicy::kOnFailure ? "on-failure"
                                                                    : "always");
  j.obj_begin("backoff")
      .key("initial")
      .duration(c.app.backoff_initial)
      .key("max")
      .duration(c.app.backoff_max)
      .close('}');
  j.key("stop_timeout").duration(c.app.stop_timeout).close('}');
  j.obj_begin("drain")
      .key("delay")
      .duration(c.drain.delay)
      .key("timeout")
      .duration(c.drain.timeout)
      .close('}');
  j.key("watch").boolean(c.watch);
  j.arr_begin("listeners");
  for (const Listener& l : c.listeners) {
    j.item_begin().key("name").str(l.name).key("address").str(l.address.to_string());
    j.key("direction").str(l.direction == Direction::kInbound ? "inbound" : "outbound");
    static constexpr std::string_view kProtocols[] = {"auto", "http1", "h2c", "tcp"};
    j.key("protocol").str(kProtocols[static_cast<int>(l.protocol)]);
    if (l.protocol == ListenerProtocol::kTcp) j.key("cluster").str(l.cluster);
    j.key("access_log").boolean(l.access_log);
    j.arr_begin("filters");
    for (const FilterConfig& f : l.filters) j.item_begin().key("name").str(f.name).close('}');
    j.close(']');
    j.key("max_request_headers_size").num(l.max_request_headers_size);
    j.key("max_request_headers_count").num(l.max_request_headers_count);
    j.key("request_headers_timeout").duration(l.request_headers_timeout);
    j.key("idle_timeout").duration(l.idle_timeout);
    j.key("stream_idle_timeout").duration(l.stream_idle_timeout);
    if (l.tls.enabled) {
      const ServerTls& t = l.tls;
      j.obj_begin("tls").arr_begin("certificates");
      for (const CertificateFiles& f : t.certificates) {
        j.item_begin().key("cert").str(f.cert).key("key").str(f.key).close('}');
      }
      j.close(']').key("min_version").str(t.min_version);
      strings(j, "cipher_suites", t.cipher_suites);
      strings(j, "alpn", t.alpn);
      j.key("client_ca").str(t.client_ca).key("require_client_cert").boolean(t.require_client_cert);
      strings(j, "verify_client_san", t.verify_client_san);
      j.key("session_tickets").boolean(t.session_tickets).close('}');
      static constexpr std::string_view kFcc[] = {"sanitize", "append_forward", "sanitize_set"};
      j.key("forward_client_cert").str(kFcc[static_cast<int>(l.forward_client_cert)]);
    }
    j.arr_begin("routes");
    for (const Route& r : l.routes) {
      j.item_begin().key("name").str(r.name);
      j.obj_begin("match");
      if (!r.match.prefix.empty()) j.key("prefix").str(r.match.prefix);
      if (!r.match.path.empty()) j.key("path").str(r.match.path);
      if (!r.match.host.empty()) j.key("host").str(r.match.host);
      if (!r.match.headers.empty()) {
        j.arr_begin("headers");
        for (const HeaderMatcher& m : r.match.headers) {
          j.item_begin().key("name").str(m.name);
          if (m.kind == HeaderMatcher::Kind::kPresent) {
            j.key("present").boolean(true);
          } else {
            j.key(matcher_kind(m.kind)).str(m.value);
          }
          j.key("invert").boolean(m.invert).close('}');
        }
        j.close(']');
      }
      j.close('}');
      j.key("cluster").str(r.cluster);
      if (!r.weighted_clusters.empty()) {
        j.arr_begin("weighted_clusters");
        for (const WeightedCluster& w : r.weighted_clusters)
          j.item_begin().key("name").str(w.name).key("weight").num(w.weight).close('}');
        j.close(']');
      }
      j.key("timeout").duration(r.timeout);
      j.key("idle_timeout").duration(r.idle_timeout);
      strings(j, "upgrade", r.upgrade);
      if (r.retry_policy.enabled()) {
        const RetryPolicy& p = r.retry_policy;
        j.key("retry_policy").open('{');
        strings(j, "retry_on", retry_on_names(p.retry_on));
        j.arr_begin("retriable_status_codes");
        for (uint16_t code : p.retriable_status_codes) j.num(code);
        j.close(']');
        j.key("num_retries").num(p.num_retries).key("per_try_timeout").duration(p.per_try_timeout);
        j.obj_begin("retry_back_off")
            .key("base_interval")
            .duration(p.base_interval)
            .key("max_interval")
            .duration(p.max_interval)
            .close('}');
        j.key("retry_non_idempotent").boolean(p.retry_non_idempotent);
        j.key("hedge_on_per_try_timeout").boolean(p.hedge_on_per_try_timeout).close('}');
      }
      if (!r.request_mirror_policies.empty()) {
        j.arr_begin("request_mirror_policies");
        for (const MirrorPolicy& m : r.request_mirror_policies) {
          j.item_begin().key("cluster").str(m.cluster).key("runtime_fraction").num(m.fraction);
          j.close('}');
        }
        j.close(']');
      }
      if (r.include_request_attempt_count) j.key("include_request_attempt_count").boolean(true);
      if (!r.prefix_rewrite.empty()) j.key("prefix_rewrite").str(r.prefix_rewrite);
      if (r.regex_rewrite.pattern) {
        j.obj_begin("regex_rewrite").key("pattern").str(r.regex_rewrite.pattern->pattern());
        j.key("substitution").str(r.regex_rewrite.substitution).close('}');
      }
      if (!r.host_rewrite.empty()) j.key("host_rewrite").str(r.host_rewrite);
      if (r.auto_host_rewrite) j.key("auto_host_rewrite").boolean(true);
      if (r.redirect) {
        const Redirect& d = *r.redirect;
        j.obj_begin("redirect").key("response_code").num(d.response_code);
        if (!d.scheme_redirect.empty()) j.key("scheme_redirect").str(d.scheme_redirect);
        if (!d.host_redirect.empty()) j.key("host_redirect").str(d.host_redirect);
        if (d.port_redirect != 0) j.key("port_redirect").num(d.port_redirect);
        if (!d.path_redirect.empty()) j.key("path_redirect").str(d.path_redirect);
        if (!d.prefix_rewrite.empty()) j.key("prefix_rewrite").str(d.prefix_rewrite);
        if (d.regex_rewrite.pattern) {
          j.key("regex_rewrite").str(d.regex_rewrite.pattern->pattern());
        }
        j.key("strip_query").boolean(d.strip_query).close('}');
      }
      if (r.direct_response) {
        j.obj_begin("direct_response").key("status").num(r.direct_response->status);
        j.key("body_bytes").num(r.direct_response->body.size()).close('}');
      }
      j.close('}');
    }
    j.close(']').close('}');
  }
  j.close(']');
  j.arr_begin("clusters");
  for (const Cluster& cl : c.clusters) {
    j.item_begin().key("name").str(cl.name).arr_begin("endpoints");
    for (const Address& a : cl.endpoints) j.str(a.to_string());
    j.close(']');
    j.key("connect_timeout").duration(cl.connect_timeout);
    j.key("idle_timeout").duration(cl.idle_timeout);
    j.key("max_requests_per_connection").num(cl.max_requests_per_connection);
    j.key("max_response_headers_size").num(cl.max_response_headers_size);
    j.key("max_response_headers_count").num(cl.max_response_headers_count);
    j.key("lb_policy").str(std::string(to_string(cl.lb_policy)));
    {
      // Weights and priorities of the endpoints, in the order above.
      j.arr_begin("endpoint_weights");
      for (const Address& a : cl.endpoints) j.num(a.weight);
      j.close(']').arr_begin("endpoint_priorities");
      for (const Address& a : cl.endpoints) j.num(a.priority);
      j.close(']');
      const CircuitBreakers& b = cl.circuit_breakers;
      j.obj_begin("circuit_breakers").key("max_connections").num(b.max_connections);
      j.key("max_pending_requests").num(b.max_pending_requests);
      j.key("max_requests").num(b.max_requests).key("max_retries").num(b.max_retries);
      if (b.retry_budget) {
        j.obj_begin("retry_budget").key("budget_percent").num(b.budget_percent);
        j.key("min_retry_concurrency").num(b.min_retry_concurrency).close('}');
      }
      j.close('}');
    }
    if (cl.tls.enabled) {
      const ClientTls& t = cl.tls;
      j.obj_begin("tls").key("sni").str(t.sni).key("ca").str(t.ca);
      strings(j, "verify_san", t.verify_san);
      j.key("cert").str(t.cert).key("key").str(t.key);
      j.key("insecure_skip_verify").boolean(t.insecure_skip_verify);
      strings(j, "alpn", t.alpn);
      j.key("min_version").str(t.min_version).close('}');
    }
    health_json(j, cl);
    j.close('}');
  }
  j.close(']');
  if (c.access_log.enabled) {
    const AccessLog& a = c.access_log;
    j.obj_begin("access_log").key("path").str(a.path).key("format").str(a.json ? "json" : "text");
    if (a.json) {
      j.obj_begin("json_format");
      for (const LogField& f : a.fields) j.key(f.key).str(format_tokens(f.tokens));
      j.close('}');
    } else {
      j.key("text_format").str(format_tokens(a.fields.front().tokens));
    }
    j.arr_begin("status");
    for (const auto& [lo, hi] : a.status)
      j.str(lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi));
    j.close(']');
    j.key("sample").num(a.sample).key("buffer_size").num(static_cast<double>(a.buffer_size));
    j.close('}');
  }
  j.obj_begin("metrics").arr_begin("processes");
  for (const WatchedProcess& p : c.metrics.processes) {
    j.item_begin().key("name").str(p.name);
    if (!p.pid_file.empty()) j.key("pid_file").str(p.pid_file);
    if (!p.cgroup.empty()) j.key("cgroup").str(p.cgroup);
    j.close('}');
  }
  j.close(']').close('}');
  // Sections of modules, as given (secrets redacted).
  for (const auto& [key, section] : c.sections) {
    j.key(key).raw(section.json);
  }
  j.close('}');
  out += '\n';
  return out;
}

}  // namespace sidecar::config
