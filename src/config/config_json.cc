#include "config/config_json.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include "config/access_log_format.h"
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
      j.key("cluster").str(r.cluster).key("timeout").duration(r.timeout);
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
    if (cl.tls.enabled) {
      const ClientTls& t = cl.tls;
      j.obj_begin("tls").key("sni").str(t.sni).key("ca").str(t.ca);
      strings(j, "verify_san", t.verify_san);
      j.key("cert").str(t.cert).key("key").str(t.key);
      j.key("insecure_skip_verify").boolean(t.insecure_skip_verify);
      strings(j, "alpn", t.alpn);
      j.key("min_version").str(t.min_version).close('}');
    }
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
