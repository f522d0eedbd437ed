#include "config/loader.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include "config/balancing.h"
#include "config/reader.h"
#include "config/registry.h"
#include "config/route_action.h"
#include "config/route_policy.h"
#include "config/tls_config.h"

namespace sidecar::config {
namespace {

constexpr std::string_view kDefaultYaml = R"(# sidecar's embedded default configuration.
admin:
  address: 127.0.0.1:9901
workers: auto
access_log:
  path: stdout
app:
  port: 8080
listeners:
  - name: inbound
    address: 0.0.0.0:8000
    routes:
      - match: { prefix: / }
        cluster: app
clusters:
  - name: app
    endpoints: [ 127.0.0.1:8080 ]
)";

// Parses the core keys and hands module-owned keys to their parsers.
class Loader : public Reader {
 public:
  using Reader::Reader;

  Config load(const YAML::Node& root) {
    Config c;
    c.source = source();
    if (root.IsNull()) return c;  // empty file: all defaults, no listeners
    if (!is_map(root, "the top level")) return c;
    check_top_level(root);
    if (auto n = root["admin"]) load_admin(n, c.admin);
    if (auto n = root["workers"]) {
      if (n.IsScalar() && n.Scalar() == "auto") {
        c.workers = 0;
      } else {
        uint64_t w = 0;
        if (get_uint(n, "workers", w) && (w < 1 || w > 256)) {
          error(n, "workers must be 'auto' or between 1 and 256");
        }
        c.workers = static_cast<uint32_t>(w);
      }
    }
    if (auto n = root["app"]) load_app(n, c.app);
    if (auto n = root["drain"]) {
      if (is_map(n, "drain")) {
        check_keys(n, "drain", {"delay", "timeout"});
        if (auto t = n["delay"]) get_duration(t, "drain.delay", c.drain.delay);
        if (auto t = n["timeout"]) get_duration(t, "drain.timeout", c.drain.timeout);
      }
    }
    if (auto n = root["watch"]) get_bool(n, "watch", c.watch);
    if (auto n = root["access_log"]) load_access_log(n, c.access_log);
    if (auto n = root["metrics"]) load_metrics(n, c.metrics);
    for (auto it = root.begin(); it != root.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) continue;
      if (const Parser* parse = find_section(key.Scalar())) {
        Section s;
        s.typed = (*parse)(it->second, *this);
        s.json = yaml_to_json(it->second);
        c.sections[key.Scalar()] = std::move(s);
      }
    }
    if (auto n = root["clusters"]) {
      if (is_seq(n, "clusters")) {
        for (size_t i = 0; i < n.size(); ++i) load_cluster(n[i], i, c);
      }
    }
    if (auto n = root["listeners"]) {
      if (is_seq(n, "listeners")) {
        for (size_t i = 0; i < n.size(); ++i) load_listener(n[i], i, c);
      }
    }
    for (const LogField& f : c.access_log.fields) {
      for (const LogToken& t : f.tokens) {
        auto& list = t.kind == LogToken::Kind::kResponseHeader ? c.access_log.response_headers
                                                               : c.access_log.request_headers;
        if (t.kind != LogToken::Kind::kRequestHeader && t.kind != LogToken::Kind::kResponseHeader) {
          continue;
        }
        for (const std::string& h : {t.text, t.fallback}) {
          if (!h.empty() && std::find(list.begin(), list.end(), h) == list.end()) list.push_back(h);
        }
      }
    }
    return c;
  }

 private:
  static constexpr std::string_view kCoreKeys[] = {"admin",     "workers",    "app",
                                                   "listeners", "clusters",   "drain",
                                                   "watch",     "access_log", "metrics"};

  // Core keys and the keys of registered sections; anything else is an error.
  void check_top_level(const YAML::Node& root) {
    std::set<std::string> seen;
    for (auto it = root.begin(); it != root.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        error(key, "keys at the top level must be strings");
        continue;
      }
      const std::string& k = key.Scalar();
      if (!seen.insert(k).second)
        error(key, fmt::format("'{}' is given twice at the top level", k));
      if (std::find(std::begin(kCoreKeys), std::end(kCoreKeys), k) != std::end(kCoreKeys) ||
          find_section(k) != nullptr) {
        continue;
      }
      std::vector<std::string> known(std::begin(kCoreKeys), std::end(kCoreKeys));
      for (const std::string& n : section_names()) known.push_back(n);
      std::sort(known.begin(), known.end());
      std::string list;
      for (const std::string& n : known) list += (list.empty() ? "" : ", ") + n;
      error(key, fmt::format("unknown key '{}' at the top level (expected one of: {})", k, list));
    }
  }

  // Parses a format string, reporting problems at the node.
  bool get_format(const YAML::Node& n, std::string_view what, std::vector<LogToken>& out) {
    std::string text;
    if (!get_string(n, what, text)) return false;
    std::string why;
    size_t offset = 0;
    auto tokens = parse_log_format(text, why, offset);
    if (!tokens) {
      error(n, fmt::format("{}: {} (at byte {} of the format)", what, why, offset));
      return false;
    }
    out = std::move(*tokens);
    return true;
  }

  void load_access_log(const YAML::Node& n, AccessLog& log) {
    log.enabled = true;
    if (n.IsNull()) {
      log.fields = default_log_fields();
      return;
    }
    if (!is_map(n, "access_log")) return;
    check_keys(n, "access_log",
               {"path", "format", "json_format", "text_format", "status", "sample", "buffer_size"});
    if (auto v = n["path"]) {
      if (get_string(v, "access_log.path", log.path) && log.path.empty()) {
        error(v, "access_log.path must not be empty (stdout, stderr or a file)");
      }
    }
    std::string format = "json";
    if (auto v = n["format"]) {
      if (get_string(v, "access_log.format", format) && format != "json" && format != "text") {
        error(v, fmt::format("access_log.format must be json or text, not '{}'", format));
      }
    }
    if (auto v = n["json_format"]) {
      if (is_map(v, "access_log.json_format")) {
        for (auto it = v.begin(); it != v.end(); ++it) {
          const YAML::Node key = it->first;
          LogField f;
          f.key = key.Scalar();
          get_format(it->second, "access_log.json_format." + f.key, f.tokens);
          log.fields.push_back(std::move(f));
        }
        if (v.size() == 0) error(v, "access_log.json_format must not be empty");
      }
      if (format != "json") error(v, "access_log.json_format needs format: json");
    }
    if (auto v = n["text_format"]) {
      if (n["json_format"]) error(v, "access_log takes json_format or text_format, not both");
      format = "text";
      LogField f;
      get_format(v, "access_log.text_format", f.tokens);
      log.fields = {std::move(f)};
    }
    log.json = format == "json";
    if (log.fields.empty()) {
      if (log.json) {
        log.fields = default_log_fields();
      } else {
        // Envoy's default format.
        std::string why;
        size_t offset = 0;
        log.fields = {
            {"", *parse_log_format("[%START_TIME%] \"%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%\" "
                                   "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% "
                                   "%DURATION% %UPSTREAM_SERVICE_TIME% \"%REQ(X-FORWARDED-FOR)%\" "
                                   "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" "
                                   "\"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"",
                                   why, offset)}};
      }
    }
    if (auto v = n["status"]) {
      if (is_seq(v, "access_log.status")) {
        for (size_t i = 0; i < v.size(); ++i) {
          std::string s;
          if (!get_string(v[i], "access_log.status", s)) continue;
          unsigned lo = 0, hi = 0;
          if (s.size() == 3 && s[0] >= '1' && s[0] <= '5' && s.substr(1) == "xx") {
            lo = (s[0] - '0') * 100;
            hi = lo + 99;
          } else if (auto dash = s.find('-'); dash != std::string::npos) {
            lo = static_cast<unsigned>(std::atoi(s.substr(0, dash).c_str()));
            hi = static_cast<unsigned>(std::atoi(s.substr(dash + 1).c_str()));
          } else {
            lo = hi = static_cast<unsigned>(std::atoi(s.c_str()));
          }
          if (lo < 100 || hi > 599 || lo > hi) {
            error(v[i], fmt::format("access_log.status: '{}' is not a status (404), class (5xx) "
                                    "or range (400-499)",
                                    s));
            continue;
          }
          log.status.emplace_back(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
        }
      }
    }
    if (auto v = n["sample"]) {
      std::string s;
      if (get_string(v, "access_log.sample", s)) {
        char* end = nullptr;
        const double d = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != 0 || d < 0 || d > 1) {
          error(v, "access_log.sample must be a number from 0 to 1");
        } else {
          log.sample = d;
        }
      }
    }
    if (auto v = n["buffer_size"]) {
      uint32_t size = 0;
      if (get_size32(v, "access_log.buffer_size", size, 64 * 1024, 1u << 30))
        log.buffer_size = size;
    }
  }

  void load_metrics(const YAML::Node& n, Metrics& m) {
    if (!is_map(n, "metrics")) return;
    check_keys(n, "metrics", {"processes"});
    if (auto v = n["processes"]) {
      if (!is_seq(v, "metrics.processes")) return;
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string where = fmt::format("metrics.processes[{}]", i);
        if (!is_map(v[i], where)) continue;
        check_keys(v[i], where, {"name", "pid_file", "cgroup"});
        WatchedProcess p;
        if (auto x = v[i]["name"]) {
          get_string(x, where + ".name", p.name);
        } else {
          error(v[i], where + " needs a name");
        }
        if (auto x = v[i]["pid_file"]) get_string(x, where + ".pid_file", p.pid_file);
        if (auto x = v[i]["cgroup"]) get_string(x, where + ".cgroup", p.cgroup);
        if (p.pid_file.empty() == p.cgroup.empty()) {
          error(v[i], where + " takes one of pid_file or cgroup");
        }
        m.processes.push_back(std::move(p));
      }
    }
  }

  void load_admin(const YAML::Node& n, Admin& admin) {
    if (!is_map(n, "admin")) return;
    check_keys(n, "admin", {"address"});
    if (auto a = n["address"]) get_address(a, "admin.address", admin.address);
  }

  void load_app(const YAML::Node& n, App& app) {
    if (!is_map(n, "app")) return;
    check_keys(n, "app", {"port", "ready", "restart", "backoff", "stop_timeout"});
    if (auto p = n["port"]) {
      uint32_t port = 0;
      if (get_count(p, "app.port", port, 1, 65535)) app.port = static_cast<uint16_t>(port);
    }
    if (auto r = n["ready"]) {
      if (is_map(r, "app.ready")) {
        check_keys(r, "app.ready", {"http_path", "period", "timeout"});
        app.ready.configured = true;
        if (auto v = r["http_path"]) {
          if (get_string(v, "app.ready.http_path", app.ready.http_path) &&
              (app.ready.http_path.empty() || app.ready.http_path[0] != '/')) {
            error(v, "app.ready.http_path must start with /");
          }
        }
        if (auto v = r["period"]) {
          if (get_duration(v, "app.ready.period", app.ready.period) &&
              app.ready.period.count() == 0) {
            error(v, "app.ready.period must be more than 0");
          }
        }
        if (auto v = r["timeout"]) get_duration(v, "app.ready.timeout", app.ready.timeout);
      }
    }
    if (auto r = n["restart"]) {
      std::string policy;
      if (get_string(r, "app.restart", policy)) {
        if (policy == "never") {
          app.restart = RestartPolicy::kNever;
        } else if (policy == "on-failure") {
          app.restart = RestartPolicy::kOnFailure;
        } else if (policy == "always") {
          app.restart = RestartPolicy::kAlways;
        } else {
          error(r,
                fmt::format("app.restart must be never, on-failure or always, not '{}'", policy));
        }
      }
    }
    if (auto b = n["backoff"]) {
      if (is_map(b, "app.backoff")) {
        check_keys(b, "app.backoff", {"initial", "max"});
        if (auto v = b["initial"]) get_duration(v, "app.backoff.initial", app.backoff_initial);
        if (auto v = b["max"]) get_duration(v, "app.backoff.max", app.backoff_max);
      }
    }
    if (auto t = n["stop_timeout"]) get_duration(t, "app.stop_timeout", app.stop_timeout);
  }

  void load_cluster(const YAML::Node& n, size_t index, Config& c) {
    const std::string where = fmt::format("clusters[{}]", index);
    if (!is_map(n, where)) return;
    check_keys(
        n, where,
        {"name", "endpoints", "connect_timeout", "idle_timeout", "max_requests_per_connection",
         "max_response_headers_size", "max_response_headers_count", "tls", "protocol", "discovery",
         "health_checks", "outlier_detection", "lb_policy", "least_request_lb_config",
         "ring_hash_lb_config", "common_lb_config", "ewma_lb_config", "circuit_breakers"});
    Cluster cl;
    if (auto v = n["discovery"]) load_discovery(v, where + ".discovery", cl.discovery);
    if (auto v = n["name"]) {
      get_string(v, where + ".name", cl.name);
      if (cl.name.empty()) error(v, where + ".name must not be empty");
      if (c.cluster_index(cl.name) >= 0) {
        error(v, fmt::format("cluster '{}' is defined twice", cl.name));
      }
    } else {
      error(n, where + " needs a name");
    }
    if (auto v = n["endpoints"]) {
      if (is_seq(v, where + ".endpoints")) {
        for (size_t i = 0; i < v.size(); ++i) {
          Address a;
          if (cl.discovery.dns.enabled) {  // names resolved later (config/health_config.h)
            DnsDiscovery::Target t;
            if (get_dns_target(*this, v[i], fmt::format("{}.endpoints[{}]", where, i), t)) {
              cl.discovery.dns.targets.push_back(std::move(t));
            }
          } else if (load_endpoint(*this, v[i], fmt::format("{}.endpoints[{}]", where, i), a)) {
            if (a.port == 0) {
              error(v[i], fmt::format("{}.endpoints[{}] needs a port", where, i));
            } else {
              cl.endpoints.push_back(a);
            }
          }
        }
        if (v.size() == 0 && cl.discovery.etcd_service.empty()) {
          error(v, where + ".endpoints must not be empty");
        }
      }
    } else if (cl.discovery.etcd_service.empty()) {
      error(n, where + " needs endpoints (or discovery)");
    }
    if (cl.discovery.dns.enabled) finish_dns_cluster(cl);
    if (auto v = n["connect_timeout"])
      get_duration(v, where + ".connect_timeout", cl.connect_timeout);
    if (auto v = n["idle_timeout"]) get_duration(v, where + ".idle_timeout", cl.idle_timeout);
    if (auto v = n["max_requests_per_connection"]) {
      get_count(v, where + ".max_requests_per_connection", cl.max_requests_per_connection, 0,
                UINT32_MAX);
    }
    if (auto v = n["max_response_headers_size"]) {
      get_size32(v, where + ".max_response_headers_size", cl.max_response_headers_size, 1024,
                 1024 * 1024);
    }
    if (auto v = n["max_response_headers_count"]) {
      get_count(v, where + ".max_response_headers_count", cl.max_response_headers_count, 1, 10000);
    }
    if (auto v = n["protocol"]) {
      std::string p;
      if (get_enum(v, where + ".protocol", p, {"http1", "h2", "h2c", "auto"})) {
        cl.protocol = p == "h2"     ? UpstreamProtocol::kH2
                      : p == "h2c"  ? UpstreamProtocol::kH2c
                      : p == "auto" ? UpstreamProtocol::kAuto
                                    : UpstreamProtocol::kHttp1;
      }
    }
    if (auto v = n["tls"]) {
      load_client_tls(*this, v, where + ".tls", cl.tls);
      // h2 is negotiated by ALPN unless the config says otherwise.
      if (cl.protocol == UpstreamProtocol::kH2 && v.IsMap() && !v["alpn"]) cl.tls.alpn = {"h2"};
      // auto: the server picks (Envoy's auto_config); without TLS, HTTP/1.1.
      if (cl.protocol == UpstreamProtocol::kAuto && v.IsMap() && !v["alpn"]) {
        cl.tls.alpn = {"h2", "http/1.1"};
      }
    }
    if (auto v = n["health_checks"]) {
      load_health_checks(*this, v, where + ".health_checks", cl.health_checks);
    }
    if (auto v = n["outlier_detection"]) {
      load_outlier_detection(*this, v, where + ".outlier_detection", cl.outlier_detection);
    }
    load_cluster_balancing(*this, n, where, cl);
    if (cl.protocol == UpstreamProtocol::kH2 && !cl.tls.enabled) {
      error(n, where + ": protocol h2 needs tls (cleartext HTTP/2 is h2c)");
    }
    if (cl.protocol == UpstreamProtocol::kH2c && cl.tls.enabled) {
      error(n, where + ": protocol h2c is cleartext; with tls say h2");
    }
    c.clusters.push_back(std::move(cl));
  }

  // `discovery: { etcd: { service: users, tags: [v2] } }` (docs/registry.md).
  void load_discovery(const YAML::Node& n, const std::string& where, Discovery& d) {
    if (!is_map(n, where)) return;
    check_keys(n, where, {"etcd", "dns"});
    if (auto dns = n["dns"]) {
      if (n["etcd"]) error(n, where + " takes one of etcd, dns");
      load_dns_discovery(*this, dns, where + ".dns", d.dns);
      return;
    }
    const YAML::Node etcd = n["etcd"];
    if (!etcd) {
      error(n, where + " needs etcd or dns");
      return;
    }
    if (!is_map(etcd, where + ".etcd")) return;
    check_keys(etcd, where + ".etcd", {"service", "tags"});
    if (auto v = etcd["service"]) {
      if (get_string(v, where + ".etcd.service", d.etcd_service) &&
          (d.etcd_service.empty() || d.etcd_service.find('/') != std::string::npos)) {
        error(v, where + ".etcd.service must be a non-empty name without '/'");
        d.etcd_service.clear();
      }
    } else {
      error(etcd, where + ".etcd needs a service");
    }
    if (auto v = etcd["tags"]) get_strings(v, where + ".etcd.tags", d.tags);
  }

  void load_header_matcher(const YAML::Node& n, const std::string& where, HeaderMatcher& m) {
    if (!is_map(n, where)) return;
    check_keys(n, where,
               {"name", "exact", "prefix", "suffix", "contains", "present", "regex", "invert"});
    if (auto v = n["name"]) {
      get_string(v, where + ".name", m.name);
      if (m.name.empty()) error(v, where + ".name must not be empty");
    } else {
      error(n, where + " needs a name");
    }
    int kinds = 0;
    auto kind = [&](const char* key, HeaderMatcher::Kind k) {
      if (auto v = n[key]) {
        ++kinds;
        m.kind = k;
        if (k == HeaderMatcher::Kind::kPresent) {
          bool present = true;
          get_bool(v, where + ".present", present);
          if (!present) m.invert = !m.invert;
        } else {
          get_string(v, where + "." + key, m.value);
        }
      }
    };
    kind("exact", HeaderMatcher::Kind::kExact);
    kind("prefix", HeaderMatcher::Kind::kPrefix);
    kind("suffix", HeaderMatcher::Kind::kSuffix);
    kind("contains", HeaderMatcher::Kind::kContains);
    kind("present", HeaderMatcher::Kind::kPresent);
    kind("regex", HeaderMatcher::Kind::kRegex);
    if (kinds > 1) {
      error(n, where + " takes one of exact, prefix, suffix, contains, present, regex");
    }
    if (kinds == 0) m.kind = HeaderMatcher::Kind::kPresent;
    if (auto v = n["invert"]) {
      bool inv = false;
      if (get_bool(v, where + ".invert", inv) && inv) m.invert = !m.invert;
    }
    if (m.kind == HeaderMatcher::Kind::kRegex) {
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_shared<RE2>(m.value, options);
      if (!re->ok()) {
        error(n["regex"], fmt::format("{}.regex: {}", where, re->error()));
      } else {
        m.regex = std::move(re);
      }
    }
  }

  void load_route(const YAML::Node& n, const std::string& where, const std::string& listener,
                  size_t index, const Config& c, const std::vector<FilterConfig>& listener_filters,
                  Route& r) {
    if (!is_map(n, where)) return;
    check_keys(n, where,
               {"name", "match", "cluster", "timeout", "typed_per_filter_config", "retry_policy",
                "request_mirror_policies", "include_request_attempt_count", "weighted_clusters",
                "hash_policy", "upgrade", "idle_timeout", "prefix_rewrite", "regex_rewrite",
                "host_rewrite", "auto_host_rewrite", "redirect", "direct_response"});
    r.name = fmt::format("{}/{}", listener, index);
    if (auto v = n["name"]) get_string(v, where + ".name", r.name);
    if (auto m = n["match"]) {
      const std::string mw = where + ".match";
      if (is_map(m, mw)) {
        check_keys(m, mw, {"prefix", "path", "host", "headers"});
        if (auto v = m["prefix"]) {
          if (get_string(v, mw + ".prefix", r.match.prefix) && r.match.prefix.empty()) {
            error(v, mw + ".prefix must not be empty (use / to match everything)");
          }
        }
        if (auto v = m["path"]) {
          if (get_string(v, mw + ".path", r.match.path) &&
              (r.match.path.empty() || r.match.path[0] != '/')) {
            error(v, mw + ".path must start with /");
          }
        }
        if (!r.match.prefix.empty() && !r.match.path.empty()) {
          error(m, mw + " takes prefix or path, not both");
        }
        if (auto v = m["host"]) get_string(v, mw + ".host", r.match.host);
        if (auto v = m["headers"]) {
          if (is_seq(v, mw + ".headers")) {
            for (size_t i = 0; i < v.size(); ++i) {
              HeaderMatcher hm;
              load_header_matcher(v[i], fmt::format("{}.headers[{}]", mw, i), hm);
              r.match.headers.push_back(std::move(hm));
            }
          }
        }
      }
    }
    if (auto v = n["cluster"]) {
      if (get_string(v, where + ".cluster", r.cluster) && c.cluster_index(r.cluster) < 0) {
        error(v, fmt::format("{}.cluster: no cluster named '{}'", where, r.cluster));
      }
      if (n["weighted_clusters"]) error(v, where + " takes cluster or weighted_clusters, not both");
    }
    load_route_balancing(*this, n, where, c, r);
    load_route_action(*this, n, where, r);  // rewrites, redirect, direct_response
    if (auto v = n["timeout"]) get_duration(v, where + ".timeout", r.timeout);
    if (auto v = n["retry_policy"])
      load_retry_policy(*this, v, where + ".retry_policy", r.retry_policy);
    if (auto v = n["request_mirror_policies"]) {
      load_mirror_policies(*this, v, where + ".request_mirror_policies", c,
                           r.request_mirror_policies);
    }
    if (auto v = n["include_request_attempt_count"]) {
      get_bool(v, where + ".include_request_attempt_count", r.include_request_attempt_count);
    }
    if (auto v = n["idle_timeout"]) get_duration(v, where + ".idle_timeout", r.idle_timeout);
    if (auto v = n["upgrade"]) {
      r.upgrade.clear();
      if (is_seq(v, where + ".upgrade")) {
        for (size_t i = 0; i < v.size(); ++i) {
          std::string t;
          const std::string tw = fmt::format("{}.upgrade[{}]", where, i);
          if (!get_string(v[i], tw, t)) continue;
          if (t.empty() || t.find_first_of(" \t,") != std::string::npos) {
            error(v[i], tw + " must be one upgrade token, such as websocket");
          } else if (t == "h2c") {
            error(v[i], tw + ": h2c is not an upgrade the proxy tunnels (RFC 9113 3.1)");
          } else {
            r.upgrade.push_back(std::move(t));
          }
        }
      }
    }
    if (auto v = n["typed_per_filter_config"]) {
      const std::string tw = where + ".typed_per_filter_config";
      if (is_map(v, tw)) {
        for (auto it = v.begin(); it != v.end(); ++it) {
          const YAML::Node key = it->first;
          FilterConfig f;
          if (!get_string(key, tw, f.name)) continue;
          bool on_listener = false;
          for (const FilterConfig& lf : listener_filters)
            on_listener = on_listener || lf.name == f.name;
          const Parser* parser = find_filter(f.name);
          if (parser == nullptr || !on_listener) {
            error(key, fmt::format("{}: '{}' is not a filter of this listener", tw, f.name));
            continue;
          }
          f.typed = (*parser)(it->second, *this);
          r.per_filter_config.push_back(std::move(f));
        }
      }
    }
  }

  void load_http2(const YAML::Node& n, const std::string& where, Http2Settings& h) {
    if (!is_map(n, where)) return;
    check_keys(n, where,
               {"max_concurrent_streams", "initial_stream_window_size",
                "initial_connection_window_size", "max_header_list_size", "allow_connect"});
    if (auto v = n["allow_connect"]) get_bool(v, where + ".allow_connect", h.allow_connect);
    // RFC 9113 6.5.2 and 6.9.2 bound the windows; the rest are sane ranges.
    if (auto v = n["max_concurrent_streams"])
      get_count(v, where + ".max_concurrent_streams", h.max_concurrent_streams, 1, 1u << 31);
    if (auto v = n["initial_stream_window_size"]) {
      get_size32(v, where + ".initial_stream_window_size", h.initial_stream_window_size, 65535,
                 (1u << 31) - 1);
    }
    if (auto v = n["initial_connection_window_size"]) {
      get_size32(v, where + ".initial_connection_window_size", h.initial_connection_window_size,
                 65535, (1u << 31) - 1);
    }
    if (auto v = n["max_header_list_size"]) {
      get_size32(v, where + ".max_header_list_size", h.max_header_list_size, 1024, 1u << 24);
    }
  }

  // The keys of a `protocol: tcp` listener: a cluster, and none of the HTTP ones.
  void load_tcp_listener(const YAML::Node& n, const std::string& where, const Config& c,
                         Listener& l) {
    if (auto v = n["cluster"]) {
      if (get_string(v, where + ".cluster", l.cluster) && c.cluster_index(l.cluster) < 0) {
        error(v, fmt::format("{}.cluster: no cluster named '{}'", where, l.cluster));
      }
    } else {
      error(n, where + " needs a cluster (protocol: tcp)");
    }
    for (const char* key :
         {"routes", "filters", "max_request_headers_size", "max_request_headers_count",
          "request_headers_timeout", "stream_idle_timeout", "forward_client_cert", "http2"}) {
      if (auto v = n[key]) {
        error(v, fmt::format("{}.{} is for HTTP listeners, not protocol: tcp", where, key));
      }
    }
  }

  void load_listener(const YAML::Node& n, size_t index, Config& c) {
    const std::string where = fmt::format("listeners[{}]", index);
    if (!is_map(n, where)) return;
    check_keys(
        n, where,
        {"name", "address", "direction", "protocol", "cluster", "access_log", "filters", "routes",
         "max_request_headers_size", "max_request_headers_count", "request_headers_timeout",
         "idle_timeout", "stream_idle_timeout", "tls", "forward_client_cert", "http2"});
    Listener l;
    if (auto v = n["protocol"]) {
      std::string p;
      if (get_enum(v, where + ".protocol", p, {"auto", "http1", "h2c", "tcp"})) {
        l.protocol = p == "http1" ? ListenerProtocol::kHttp1
                     : p == "h2c" ? ListenerProtocol::kH2c
                     : p == "tcp" ? ListenerProtocol::kTcp
                                  : ListenerProtocol::kAuto;
      }
    }
    const bool tcp = l.protocol == ListenerProtocol::kTcp;
    if (auto v = n["name"]) {
      get_string(v, where + ".name", l.name);
      if (l.name.empty()) error(v, where + ".name must not be empty");
      for (const Listener& other : c.listeners) {
        if (other.name == l.name) error(v, fmt::format("listener '{}' is defined twice", l.name));
      }
    } else {
      error(n, where + " needs a name");
    }
    if (auto v = n["address"]) {
      if (get_address(v, where + ".address", l.address)) {
        for (const Listener& other : c.listeners) {
          if (other.address == l.address && l.address.port != 0) {
            error(v, fmt::format("{} is already used by listener '{}'", l.address.to_string(),
                                 other.name));
          }
        }
        if (l.address == c.admin.address && l.address.port != 0) {
          error(v, fmt::format("{} is the admin address", l.address.to_string()));
        }
      }
    } else {
      error(n, where + " needs an address");
    }
    if (auto v = n["access_log"]) get_bool(v, where + ".access_log", l.access_log);
    if (auto v = n["filters"]) {
      if (is_seq(v, where + ".filters")) {
        for (size_t i = 0; i < v.size(); ++i) {
          const std::string fw = fmt::format("{}.filters[{}]", where, i);
          if (!is_map(v[i], fw)) continue;
          check_keys(v[i], fw, {"name", "config"});
          FilterConfig f;
          const YAML::Node name = v[i]["name"];
          if (!name) {
            error(v[i], fw + " needs a name");
            continue;
          }
          if (!get_string(name, fw + ".name", f.name)) continue;
          const Parser* parser = find_filter(f.name);
          if (parser == nullptr) {
            std::string known;
            for (const std::string& k : filter_names()) known += (known.empty() ? "" : ", ") + k;
            error(name, fmt::format("{}: unknown filter '{}' (known: {})", fw, f.name, known));
            continue;
          }
          f.typed = (*parser)(v[i]["config"], *this);
          l.filters.push_back(std::move(f));
        }
      }
    }
    if (auto v = n["direction"]) {
      std::string d;
      if (get_string(v, where + ".direction", d)) {
        if (d == "inbound") {
          l.direction = Direction::kInbound;
        } else if (d == "outbound") {
          l.direction = Direction::kOutbound;
        } else {
          error(v, fmt::format("{}.direction must be inbound or outbound, not '{}'", where, d));
        }
      }
    }
    if (tcp) {
      load_tcp_listener(n, where, c, l);  // a cluster; routes and other HTTP keys refused
    } else if (auto v = n["cluster"]) {
      error(v, where + ".cluster is for protocol: tcp (HTTP listeners choose clusters in routes)");
    }
    if (tcp) {
      // No routes.
    } else if (auto v = n["routes"]) {
      if (is_seq(v, where + ".routes")) {
        for (size_t i = 0; i < v.size(); ++i) {
          Route r;
          load_route(v[i], fmt::format("{}.routes[{}]", where, i), l.name, i, c, l.filters, r);
          l.routes.push_back(std::move(r));
        }
        if (v.size() == 0) error(v, where + ".routes must not be empty");
      }
    } else {
      error(n, where + " needs routes");
    }
    if (auto v = n["max_request_headers_size"]) {
      get_size32(v, where + ".max_request_headers_size", l.max_request_headers_size, 1024,
                 1024 * 1024);
    }
    if (auto v = n["max_request_headers_count"]) {
      get_count(v, where + ".max_request_headers_count", l.max_request_headers_count, 1, 10000);
    }
    if (auto v = n["request_headers_timeout"]) {
      get_duration(v, where + ".request_headers_timeout", l.request_headers_timeout);
    }
    if (auto v = n["idle_timeout"]) get_duration(v, where + ".idle_timeout", l.idle_timeout);
    if (auto v = n["stream_idle_timeout"]) {
      get_duration(v, where + ".stream_idle_timeout", l.stream_idle_timeout);
    }
    if (auto v = n["http2"]) load_http2(v, where + ".http2", l.http2);
    if (auto v = n["tls"]) {
      load_server_tls(*this, v, where + ".tls", l.tls);
      // A TCP listener speaks no HTTP: offer no ALPN unless told to.
      if (tcp && v.IsMap() && !v["alpn"]) l.tls.alpn.clear();
    }
    if (!l.tls.client_ca.empty()) l.forward_client_cert = ForwardClientCert::kSanitizeSet;
    if (auto v = n["forward_client_cert"]) {
      load_forward_client_cert(*this, v, where + ".forward_client_cert", l.forward_client_cert);
    }
    c.listeners.push_back(std::move(l));
  }
};

std::shared_ptr<const Config> load_yaml(std::string_view text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    throw ConfigError(
        {fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg)});
  }
  Loader loader(source);
  expand_env(root, loader);
  Config c = loader.load(root);
  if (!loader.errors().empty()) throw ConfigError(loader.errors());
  std::vector<std::string> errors;
  run_validators(c, errors);
  if (!errors.empty()) throw ConfigError(errors);
  return std::make_shared<const Config>(std::move(c));
}

}  // namespace

std::string Address::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

const Listener* Config::find_listener(std::string_view name) const {
  for (const Listener& l : listeners) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

const Section* Config::section(const std::string& key) const {
  auto it = sections.find(key);
  return it == sections.end() ? nullptr : &it->second;
}

int Config::cluster_index(std::string_view name) const {
  for (size_t i = 0; i < clusters.size(); ++i) {
    if (clusters[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

namespace {
std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) {
    if (!s.empty()) s += '\n';
    s += l;
  }
  return s;
}
}  // namespace

ConfigError::ConfigError(std::vector<std::string> messages)
    : std::runtime_error(join_lines(messages)), messages_(std::move(messages)) {}

std::shared_ptr<const Config> load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError({fmt::format("{}: cannot open: {}", path, std::strerror(errno))});
  std::ostringstream text;
  text << in.rdbuf();
  return load_yaml(text.str(), path);
}

std::shared_ptr<const Config> load_string(std::string_view yaml, const std::string& source) {
  return load_yaml(yaml, source);
}

std::string_view default_yaml() { return kDefaultYaml; }

std::optional<Duration> parse_duration(std::string_view text) {
  if (text == "0") return Duration(0);
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  if (i == 0 || i == text.size()) return std::nullopt;
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (ec != std::errc() || p != text.data() + i) return std::nullopt;
  const std::string_view unit = text.substr(i);
  double ms = 0;
  if (unit == "ms") {
    ms = value;
  } else if (unit == "s") {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60'000;
  } else if (unit == "h") {
    ms = value * 3'600'000;
  } else {
    return std::nullopt;
  }
  if (ms > 1e12 || ms != std::floor(ms)) return std::nullopt;
  return Duration(static_cast<int64_t>(ms));
}

std::optional<uint64_t> parse_size(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 15) return std::nullopt;
  uint64_t value = 0;
  std::from_chars(text.data(), text.data() + i, value);
  const std::string_view unit = text.substr(i);
  uint64_t mult = 0;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "KiB") {
    mult = 1ull << 10;
  } else if (unit == "MiB") {
    mult = 1ull << 20;
  } else if (unit == "GiB") {
    mult = 1ull << 30;
  } else if (unit == "KB") {
    mult = 1000;
  } else if (unit == "MB") {
    mult = 1000'000;
  } else if (unit == "GB") {
    mult = 1000'000'000;
  } else {
    return std::nullopt;
  }
  return value * mult;
}

std::optional<Address> parse_address(std::string_view text, std::string& why) {
  std::string_view host, port_text;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      why = fmt::format("invalid address '{}' (expected [IPv6]:PORT)", text);
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      why = fmt::format("invalid address '{}' (expected HOST:PORT or [IPv6]:PORT)", text);
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || p != port_text.data() + port_text.size() ||
      port > 65535) {
    why = fmt::format("invalid port in '{}' (expected 0-65535)", text);
    return std::nullopt;
  }
  Address a;
  a.port = static_cast<uint16_t>(port);
  if (host.empty()) host = "0.0.0.0";
  const std::string h(host);
  unsigned char raw[16];
  if (inet_pton(AF_INET, h.c_str(), raw) == 1 || inet_pton(AF_INET6, h.c_str(), raw) == 1) {
    a.host = h;
    return a;
  }
  a.hostname = h;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(h.c_str(), nullptr, &hints, &res); rc != 0 || res == nullptr) {
    why = fmt::format("cannot resolve host '{}': {}", h, gai_strerror(rc));
    return std::nullopt;
  }
  const addrinfo* pick = res;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      pick = ai;
      break;
    }
  }
  char buf[INET6_ADDRSTRLEN] = {};
  if (pick->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(pick->ai_addr)->sin_addr, buf,
              sizeof(buf));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(pick->ai_addr)->sin6_addr, buf,
              sizeof(buf));
  }
  freeaddrinfo(res);
  a.host = buf;
  return a;
}

}  // namespace sidecar::config
