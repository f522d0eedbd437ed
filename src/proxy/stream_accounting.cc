// The stream's accounting: stats, the access log, trace spans and the
// dashboard's tap, at the start and end of each request.
#include <fmt/format.h>

#include "accesslog/writer.h"
#include "proxy/grpc.h"
#include "proxy/stream.h"
#include "proxy/worker.h"
#include "tracing/tap.h"

namespace sidecar::proxy {

namespace {

uint64_t nanos(Stream::Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

}  // namespace

// ---- stats and the access log ----

void Stream::begin_request() {
  info_->listener_stats->requests_active.add();
  status_ = 0;
  flags_ = 0;
  detail_.clear();
  metadata_.clear();
  req_body_bytes_ = resp_body_bytes_ = 0;
  upstream_used_ = false;
  upstream_host_.clear();
  endpoint_stats_ = nullptr;
  accesslog::Writer* log = info_->worker->access_log();
  log_this_ = log != nullptr && listener_->config->access_log &&
              (log->config().sample >= 1.0 ||
               static_cast<double>(info_->worker->random().next() >> 11) * 0x1.0p-53 <
                   log->config().sample);
  if (log_this_) {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    start_wall_us_ =
        duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
        duration_cast<microseconds>(Clock::now() - req_start_).count();
    log_method_.clear();
    log_path_.clear();
    log_authority_.clear();
    log_request_headers_.resize(log->config().request_headers.size());
    for (std::string& h : log_request_headers_) h.clear();
    log_response_headers_.resize(log->config().response_headers.size());
    for (std::string& h : log_response_headers_) h.clear();
  }
}

void Stream::reject(size_t reason) {
  if (reason < stats::ListenerStats::kMaxRejectReasons) {
    info_->listener_stats->rejected[reason].add();
  }
}

void Stream::capture_request() {
  log_method_.assign(req_->method_name);
  log_path_.assign(req_->target);
  log_authority_.assign(authority_.empty() ? req_->host() : authority_);
  const auto& names = info_->worker->access_log()->config().request_headers;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string& v = log_request_headers_[i];
    const http::HeaderField* f = req_->find(names[i]);
    v.assign(f != nullptr ? f->value : std::string_view());
    // As forwarded: with what the proxy adds.
    if (names[i] == "x-forwarded-for") {
      if (!v.empty()) v.append(", ");
      v.append(peer_ip_);
    } else if (names[i] == "x-request-id" && request_id_generated_) {
      v.assign(request_id_, sizeof(request_id_));
    }
  }
}

void Stream::end_request(bool complete) {
  if (!active_) return;
  retry_token_.release();
  info_->listener_stats->requests_active.sub();
  if (tunnel_) info_->listener_stats->upgrades_active.sub();
  const Clock::time_point now = Clock::now();
  if (grpc_ && grpc_status_ < 0 && status_ != 0) {
    // No grpc-status came: gRPC's "HTTP to gRPC Status Code Mapping" (a 200
    // without one is UNKNOWN).
    grpc_status_ = static_cast<int8_t>(grpc_status_for(status_));
  }
  if (route_ != nullptr) {
    stats::RouteStats& rs = *route_->stats[info_->worker->index()];
    if (complete && status_ != 0) {
      rs.count_status(status_);
    } else {
      rs.resets.add();
    }
    if (grpc_status_ >= 0) rs.grpc_status[static_cast<size_t>(grpc_status_)].add();
    rs.duration.observe(nanos(now - req_start_));
    if (upstream_used_) rs.upstream_duration.observe(nanos(now - upstream_start_));
    rs.request_body_bytes.add(req_body_bytes_);
    rs.response_body_bytes.add(resp_body_bytes_);
  }
  if (endpoint_stats_ != nullptr && status_ >= 500) endpoint_stats_->requests_5xx.add();
  if (trace_.active()) end_trace();
  if (tracing::tap_wanted(status_)) publish_tap(now);
  if (log_this_) write_log(now);
  log_this_ = false;
  route_ = nullptr;
}

void Stream::begin_trace() {
  tracing::RequestInfo t;
  t.request = req_;
  t.path = path_;
  t.authority = authority_.empty() ? req_->host() : authority_;
  t.peer_address = peer_address_;
  const http::HeaderField* id = req_->find("x-request-id");
  t.request_id = request_id_generated_ ? std::string_view(request_id_, sizeof(request_id_))
                 : id != nullptr       ? id->value
                                       : std::string_view();
  t.listener = listener_->config->name;
  t.tls = info_->tls != nullptr;
  t.started = req_start_;
  trace_.begin(t, info_->worker->random());
}

void Stream::end_trace() {
  tracing::EndInfo t;
  t.status = status_;
  t.flags = flags_;
  if (route_ != nullptr) {
    t.route = route_->config->name;
    t.cluster = cluster_name();
  }
  t.upstream_host = upstream_host_;
  t.detail = detail_;
  t.request_body_bytes = req_body_bytes_;
  t.response_body_bytes = resp_body_bytes_;
  trace_.end(t);
}

void Stream::publish_tap(Clock::time_point now) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  tracing::TapRecord t;
  t.start_unix_us =
      duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
      duration_cast<microseconds>(now - req_start_).count();
  t.duration_ms = static_cast<double>(nanos(now - req_start_)) / 1e6;
  t.status = status_;
  t.listener = listener_->config->name;
  if (route_ != nullptr) {
    t.route = route_->config->name;
    t.cluster = cluster_name();
  }
  if (req_ != nullptr) {
    t.method = req_->method_name;
    t.path = req_->target;
    t.authority = authority_.empty() ? req_->host() : authority_;
    const http::HeaderField* id = req_->find("x-request-id");
    if (request_id_generated_) {
      t.request_id.assign(request_id_, sizeof(request_id_));
    } else if (id != nullptr) {
      t.request_id = id->value;
    }
  }
  t.upstream_host = upstream_host_;
  accesslog::append_flags(t.flags, flags_);
  t.trace_id = trace_.trace_id_hex();
  tracing::tap_publish(std::move(t));
}

void Stream::write_log(Clock::time_point now) {
  accesslog::Writer* log = info_->worker->access_log();
  const config::AccessLog& cfg = log->config();
  if (!cfg.status.empty()) {
    bool wanted = false;
    for (const auto& [lo, hi] : cfg.status) wanted = wanted || (status_ >= lo && status_ <= hi);
    if (!wanted) return;
  }
  accesslog::Entry& e = log_entry_;
  e.start_time_us = start_wall_us_;
  e.duration_us = nanos(now - req_start_) / 1000;
  e.upstream_us = upstream_used_ ? nanos(now - upstream_start_) / 1000 : accesslog::Entry::kNone;
  e.bytes_received = req_body_bytes_;
  e.bytes_sent = resp_body_bytes_;
  e.flags = flags_;
  e.status = status_;
  e.grpc_status = grpc_status_;
  e.version_minor = codec_->protocol(*this) == "HTTP/2" ? 2 : version_minor_;
  e.method = log_method_;
  e.path = log_path_;
  e.authority = log_authority_;
  e.upstream_host = upstream_host_;
  e.attempt_count = attempts_;
  e.route = route_ != nullptr ? std::string_view(route_->config->name) : std::string_view();
  e.cluster = cluster_name();
  e.listener = listener_->config->name;
  e.remote_address = peer_address_;
  e.response_code_details = detail_;
  e.trace_id = trace_.trace_id_hex();
  if (const net::TlsInfo* tls = info_->tls) {
    e.tls_version = tls->version;
    e.peer_subject = tls->peer_subject;
    e.peer_uri_san = info_->peer_uri_sans();
    e.requested_server_name = tls->server_name;
  } else {
    e.tls_version = e.peer_subject = e.peer_uri_san = e.requested_server_name = {};
  }
  e.request_headers.assign(log_request_headers_.begin(), log_request_headers_.end());
  e.response_headers.assign(log_response_headers_.begin(), log_response_headers_.end());
  Worker& w = *info_->worker;
  accesslog::Ring& ring = log->ring(w.index());
  char* p = ring.reserve(accesslog::encoded_size(e));
  if (p == nullptr) {
    w.stats().access_log_dropped.add();
    log->wake();
    return;
  }
  accesslog::encode(e, p);
  ring.commit();
  w.stats().access_log_lines.add();
  if (ring.used() > ring.capacity() / 2) log->wake();
}

}  // namespace sidecar::proxy
