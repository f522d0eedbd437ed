#include "tracing/stream_trace.h"

#include <atomic>
#include <charconv>
#include <mutex>

#include "accesslog/entry.h"
#include "core/random.h"
#include "http/http1_parser.h"
#include "tracing/tracer.h"

namespace sidecar::tracing {
namespace {

std::atomic<Tracer*> g_tracer{nullptr};

uint64_t unix_ns(std::chrono::system_clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

uint64_t now_ns() { return unix_ns(std::chrono::system_clock::now()); }

template <size_t N>
void random_id(core::Random& random, std::array<uint8_t, N>& id) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t r = random.next();
      for (size_t k = 0; k < 8 && i + k < N; ++k) id[i + k] = static_cast<uint8_t>(r >> (8 * k));
    }
  } while (!valid(id));
}

std::string_view header(const http::RequestHead& r, std::string_view name) {
  const http::HeaderField* f = r.find(name);
  return f != nullptr ? f->value : std::string_view();
}

// "host:port" or "[v6]:port" into its parts (port 0 when absent).
void split_host_port(std::string_view s, std::string_view& host, int64_t& port) {
  port = 0;
  host = s;
  size_t colon = std::string_view::npos;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos) return;
    host = s.substr(1, close - 1);
    if (close + 1 < s.size() && s[close + 1] == ':') colon = close + 1;
  } else {
    colon = s.rfind(':');
    if (colon != std::string_view::npos) host = s.substr(0, colon);
  }
  if (colon == std::string_view::npos) return;
  const std::string_view p = s.substr(colon + 1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec == std::errc() && end == p.data() + p.size() && v > 0 && v < 65536) port = v;
}

void add_host_port(SpanRecord& s, std::string_view address_key, std::string_view port_key,
                   std::string_view hostport) {
  std::string_view host;
  int64_t port;
  split_host_port(hostport, host, port);
  if (!host.empty()) s.add(std::string(address_key), std::string(host));
  if (port != 0) s.add(std::string(port_key), port);
}

}  // namespace

Tracer* active_tracer() { return g_tracer.load(std::memory_order_acquire); }
void set_active_tracer(Tracer* tracer) {
  // Every tracer ever published stays reachable (a worker may still use it).
  static std::mutex mu;
  static std::vector<Tracer*> published;
  if (tracer != nullptr) {
    std::lock_guard<std::mutex> lock(mu);
    published.push_back(tracer);
  }
  g_tracer.store(tracer, std::memory_order_release);
}

bool StreamTrace::replaces(std::string_view n) {
  switch (n.size()) {
    case 2:
      return http::iequals(n, "b3");
    case 10:
      return http::iequals(n, "tracestate") || http::iequals(n, "x-b3-flags");
    case 11:
      return http::iequals(n, "traceparent") || http::iequals(n, "x-b3-spanid");
    case 12:
      return http::iequals(n, "x-b3-traceid") || http::iequals(n, "x-b3-sampled");
    case 17:
      return http::iequals(n, "x-b3-parentspanid");
    default:
      return false;
  }
}

void StreamTrace::begin(const RequestInfo& info, core::Random& random) {
  tracer_ = active_tracer();
  attempts_.clear();
  trace_id_hex_.clear();
  if (tracer_ == nullptr) return;
  const TracingConfig& cfg = *tracer_->config;
  const http::RequestHead& r = *info.request;

  // The caller's context: W3C first, then B3 (single, then multi).
  TraceContext in;
  bool have = false;
  if (cfg.tracecontext) {
    const std::string_view tp = header(r, "traceparent");
    if (!tp.empty() && parse_traceparent(tp, in)) {
      have = true;
      in.tracestate.assign(header(r, "tracestate"));
    }
  }
  if (!have && cfg.b3) {
    const std::string_view single = header(r, "b3");
    if (!single.empty()) {
      have = parse_b3_single(single, in);
    } else {
      have = parse_b3_multi(header(r, "x-b3-traceid"), header(r, "x-b3-spanid"),
                            header(r, "x-b3-parentspanid"), header(r, "x-b3-sampled"),
                            header(r, "x-b3-flags"), in);
    }
  }
  if (have && valid(in.trace_id)) {
    trace_id_ = in.trace_id;
    parent_span_id_ = in.span_id;
  } else {
    random_id(random, trace_id_);
    parent_span_id_ = {};
  }
  tracestate_ = std::move(in.tracestate);
  random_id(random, span_id_);
  append_hex(trace_id_hex_, trace_id_.data(), trace_id_.size());
  sampled_ = decide(cfg.sampling, have ? &in : nullptr, trace_id_);

  const auto ago = std::chrono::steady_clock::now() - info.started;
  start_ns_ = unix_ns(std::chrono::system_clock::now() -
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(ago));
  method_.assign(r.method_name);
  path_.assign(info.path);
  authority_.assign(info.authority);
  peer_.assign(info.peer_address);
  user_agent_.assign(header(r, "user-agent"));
  request_id_.assign(info.request_id);
  listener_.assign(info.listener);
  tls_ = info.tls;
  version_minor_ = r.version_minor;
}

void StreamTrace::attempt_start(core::Random& random) {
  if (tracer_ == nullptr) return;
  Attempt& a = attempts_.emplace_back();
  random_id(random, a.span_id);
  a.start_ns = now_ns();
  a.open = true;
}

void StreamTrace::append_headers(std::string& out) const {
  if (tracer_ == nullptr || attempts_.empty()) return;
  const TracingConfig& cfg = *tracer_->config;
  const SpanId& span = attempts_.back().span_id;
  if (cfg.tracecontext) {
    out.append("traceparent: ").append(format_traceparent(trace_id_, span, sampled_));
    out.append("\r\n");
    if (!tracestate_.empty()) out.append("tracestate: ").append(tracestate_).append("\r\n");
  }
  if (cfg.b3) {
    out.append("b3: ").append(format_b3_single(trace_id_, span, sampled_, &span_id_));
    out.append("\r\nx-b3-traceid: ");
    append_hex(out, trace_id_.data(), trace_id_.size());
    out.append("\r\nx-b3-spanid: ");
    append_hex(out, span.data(), span.size());
    out.append("\r\nx-b3-parentspanid: ");
    append_hex(out, span_id_.data(), span_id_.size());
    out.append(sampled_ ? "\r\nx-b3-sampled: 1\r\n" : "\r\nx-b3-sampled: 0\r\n");
  }
}

void StreamTrace::attempt_end(std::string_view host, uint16_t status) {
  if (tracer_ == nullptr || attempts_.empty() || !attempts_.back().open) return;
  Attempt& a = attempts_.back();
  a.open = false;
  a.end_ns = now_ns();
  a.host.assign(host);
  a.status = status;
}

void StreamTrace::end(const EndInfo& info) {
  Tracer* tracer = tracer_;
  tracer_ = nullptr;
  if (tracer == nullptr) return;
  const TracingConfig& cfg = *tracer->config;
  if (!sampled_ && !(cfg.sampling.sample_errors && info.status >= 500)) return;
  const uint64_t end = now_ns();

  SpanRecord s;
  s.trace_id = trace_id_;
  s.span_id = span_id_;
  s.parent_span_id = parent_span_id_;
  s.tracestate = tracestate_;
  s.kind = SpanKind::kServer;
  s.name = method_;
  if (!info.route.empty()) s.name.append(" ").append(info.route);
  s.start_unix_ns = start_ns_;
  s.end_unix_ns = end;
  s.add("http.request.method", method_);
  const size_t q = path_.find('?');
  s.add("url.path", path_.substr(0, q));
  if (q != std::string::npos) s.add("url.query", path_.substr(q + 1));
  s.add("url.scheme", tls_ ? "https" : "http");
  add_host_port(s, "server.address", "server.port", authority_);
  add_host_port(s, "network.peer.address", "network.peer.port", peer_);
  {
    std::string_view host;
    int64_t port;
    split_host_port(peer_, host, port);
    s.remote_ip.assign(host);
    s.remote_port = static_cast<uint16_t>(port);
    s.add("client.address", std::string(host));
  }
  if (!user_agent_.empty()) s.add("user_agent.original", user_agent_);
  s.add("network.protocol.version", version_minor_ == 0 ? "1.0" : "1.1");
  if (info.status != 0) s.add("http.response.status_code", static_cast<int64_t>(info.status));
  if (info.status >= 500 || info.status == 0) {
    s.error = true;
    s.add("error.type", info.status == 0 ? std::string("reset") : std::to_string(info.status));
  }
  s.add("sidecar.listener", listener_);
  if (!info.route.empty()) s.add("sidecar.route", std::string(info.route));
  if (!info.cluster.empty()) s.add("sidecar.cluster", std::string(info.cluster));
  if (!info.upstream_host.empty()) s.add("sidecar.upstream_host", std::string(info.upstream_host));
  std::string flags;
  accesslog::append_flags(flags, info.flags);
  s.add("sidecar.response_flags", flags);
  if (!info.detail.empty()) s.add("sidecar.response_code_details", std::string(info.detail));
  if (!request_id_.empty()) s.add("sidecar.request_id", request_id_);
  s.add("http.request.body.size", static_cast<int64_t>(info.request_body_bytes));
  s.add("http.response.body.size", static_cast<int64_t>(info.response_body_bytes));
  tracer->sink.push(std::move(s));

  for (size_t i = 0; i < attempts_.size(); ++i) {
    Attempt& a = attempts_[i];
    if (a.open) {
      // Still open when the request ends: its answer was the response.
      a.open = false;
      a.end_ns = end;
      a.host.assign(info.upstream_host);
      a.status = info.status;
    }
    SpanRecord c;
    c.trace_id = trace_id_;
    c.span_id = a.span_id;
    c.parent_span_id = span_id_;
    c.kind = SpanKind::kClient;
    c.name = method_;
    c.start_unix_ns = a.start_ns;
    c.end_unix_ns = a.end_ns;
    c.add("http.request.method", method_);
    add_host_port(c, "server.address", "server.port", a.host);
    add_host_port(c, "network.peer.address", "network.peer.port", a.host);
    {
      std::string_view host;
      int64_t port;
      split_host_port(a.host, host, port);
      c.remote_ip.assign(host);
      c.remote_port = static_cast<uint16_t>(port);
    }
    c.add("url.path", path_.substr(0, q));
    if (a.status != 0) c.add("http.response.status_code", static_cast<int64_t>(a.status));
    if (i > 0) c.add("http.request.resend_count", static_cast<int64_t>(i));
    if (a.status == 0 || a.status >= 400) {
      c.error = true;
      c.add("error.type",
            a.status == 0 ? std::string("connection_failure") : std::to_string(a.status));
    }
    if (!info.cluster.empty()) c.add("sidecar.cluster", std::string(info.cluster));
    if (!a.host.empty()) c.add("sidecar.upstream_host", a.host);
    tracer->sink.push(std::move(c));
  }
  attempts_.clear();
}

}  // namespace sidecar::tracing
