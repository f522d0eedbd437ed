#include "proxy/stream.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/coarse_clock.h"
#include "http/local_reply.h"
#include "proxy/grpc.h"
#include "proxy/http1_upstream.h"
#include "proxy/http2_upstream.h"
#include "proxy/route_action.h"
#include "proxy/worker.h"
#include "tls/acme_challenges.h"

namespace sidecar::proxy {

namespace {

using Clock = Stream::Clock;
using core::kNever;

size_t spans_size(const Spans& spans) { return boost::asio::buffer_size(spans); }

}  // namespace

std::vector<std::string> reject_reason_names() {
  std::vector<std::string> names;
  for (size_t i = 0; i < kRejectHeadersTimeout; ++i) {
    names.emplace_back(http::to_string(static_cast<http::ParseError>(i)));
  }
  names.emplace_back("request_headers_timeout");
  names.emplace_back("no_route");
  names.emplace_back("connect_not_supported");
  names.emplace_back("bad_request_target");
  names.emplace_back("upgrade_failed");
  return names;
}

// ---- start ----

std::string DownstreamInfo::peer_ip() const { return peer.address().to_string(); }

std::string DownstreamInfo::peer_address() const {
  const auto a = peer.address();
  return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), peer.port())
                   : fmt::format("{}:{}", a.to_string(), peer.port());
}

namespace {
// Appends `v` in decimal.
void append_decimal(std::string& out, unsigned v) {
  char digits[10];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out += digits[--n];
}
}  // namespace

void DownstreamInfo::format_peer(std::string& ip, std::string& address) const {
  const auto a = peer.address();
  if (!a.is_v4()) {
    ip = a.to_string();
    address.assign("[").append(ip).append("]:");
    append_decimal(address, peer.port());
    return;
  }
  const auto bytes = a.to_v4().to_bytes();
  ip.clear();
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) ip += '.';
    append_decimal(ip, bytes[i]);
  }
  address.assign(ip).append(":");
  append_decimal(address, peer.port());
}

void Stream::start(DownstreamCodec& codec, const DownstreamInfo& info,
                   std::shared_ptr<const Snapshot> snapshot, const ListenerRuntime& listener,
                   http::RequestHead& request, Clock::time_point started) {
  codec_ = &codec;
  info_ = &info;
  info.format_peer(peer_ip_, peer_address_);
  snapshot_ = std::move(snapshot);
  listener_ = &listener;
  req_ = &request;
  active_ = true;
  method_ = request.method;
  version_minor_ = request.version_minor;
  req_done_ = request.body == http::BodyKind::kNone;
  req_sent_ = retried_ = us_writing_ = false;
  // A request without a body is held whole from the start: a retry resends it.
  req_held_ = req_done_;
  held_body_.clear();
  attempts_ = 0;
  policy_retries_ = 0;
  retry_at_ = try_deadline_ = kNever;
  retry_after_.reset();
  replay_.clear();
  replay_ok_ = false;
  req_trailers_ = nullptr;
  grpc_ = is_grpc(request);
  grpc_status_ = -1;
  upgrade_ = {};
  tunnel_ = false;
  expect_continue_ = request.expect_continue;
  continue_sent_ = false;
  req_pending_ = resp_pending_ = 0;
  route_ = nullptr;
  resp_ = nullptr;
  resp_head_done_ = resp_started_ = resp_done_ = interim_sent_ = response_waiting_ = false;
  ds_writing_ = DownWrite::kNone;
  connecting_ = false;
  connect_deadline_ = response_deadline_ = kNever;
  req_start_ = started;
  last_activity_ = core::CoarseClock::now();
  begin_request();
  req_remove_.clear();
  resp_remove_.clear();
  req_add_.clear();
  resp_add_.clear();
  filters_paused_at_ = SIZE_MAX;
  resp_streamed_ = path_overridden_ = false;
  req_streamed_ = buffer_requested_ = buffering_ = prebuffered_ = body_was_buffered_ = false;
  prebuffer_.clear();
  filter_reply_status_ = 0;
  filter_response_.reset();

  if (method_ == http::Method::kConnect) {
    reject(kRejectConnect);
    local_reply(405, "CONNECT is not supported\n", false);
    return;
  }
  authority_ = {};
  if (!parse_target()) {
    flags_ |= accesslog::kDownstreamProtocolError;
    reject(kRejectBadTarget);
    local_reply(400, "Bad Request: bad_request_target\n", true);
    return;
  }
  request_id_generated_ = request.find("x-request-id") == nullptr;
  if (request_id_generated_) core::format_uuid4(info_->worker->random(), request_id_);
  begin_trace();
  if (log_this_) capture_request();
  route_and_forward();
}

void Stream::start_rejected(DownstreamCodec& codec, const DownstreamInfo& info,
                            std::shared_ptr<const Snapshot> snapshot,
                            const ListenerRuntime& listener, Clock::time_point started,
                            http::Method method, size_t reason, int status, std::string_view body,
                            uint32_t flags) {
  codec_ = &codec;
  info.format_peer(peer_ip_, peer_address_);
  info_ = &info;
  snapshot_ = std::move(snapshot);
  listener_ = &listener;
  req_ = nullptr;
  active_ = true;
  method_ = method;
  version_minor_ = 1;
  req_done_ = true;
  req_sent_ = req_held_ = retried_ = us_writing_ = expect_continue_ = continue_sent_ = false;
  attempts_ = 0;
  policy_retries_ = 0;
  retry_at_ = try_deadline_ = kNever;
  grpc_ = false;
  grpc_status_ = -1;
  upgrade_ = {};
  tunnel_ = false;
  req_pending_ = resp_pending_ = 0;
  route_ = nullptr;
  resp_ = nullptr;
  resp_head_done_ = resp_started_ = resp_done_ = interim_sent_ = response_waiting_ = false;
  ds_writing_ = DownWrite::kNone;
  connecting_ = false;
  connect_deadline_ = response_deadline_ = kNever;
  req_start_ = started;
  last_activity_ = core::CoarseClock::now();
  begin_request();
  flags_ |= flags;
  reject(reason);
  local_reply(status, body, true);
}

bool Stream::parse_target() {
  const std::string_view t = req_->target;
  path_slash_first_ = false;
  if (t[0] == '/') {
    path_ = t;
    return true;
  }
  if (t == "*") {
    path_ = t;
    return method_ == http::Method::kOptions;
  }
  // absolute-form [RFC 9112 3.2.2]: the authority replaces Host.
  const size_t scheme_end = t.find("://");
  if (scheme_end == std::string_view::npos) return false;
  const std::string_view scheme = t.substr(0, scheme_end);
  if (!http::iequals(scheme, "http") && !http::iequals(scheme, "https")) return false;
  const std::string_view rest = t.substr(scheme_end + 3);
  const size_t end = rest.find_first_of("/?#");
  authority_ = rest.substr(0, end);
  if (authority_.empty() || authority_.find('@') != std::string_view::npos) return false;
  if (end == std::string_view::npos) {
    path_ = "/";
  } else if (rest[end] == '/') {
    path_ = rest.substr(end);
  } else if (rest[end] == '?') {
    // An empty path is "/" [RFC 9110 4.2.3], for routing as for sending.
    path_ = rest.substr(end);
    path_slash_first_ = true;
  } else {
    return false;
  }
  return true;
}

void Stream::route_and_forward() {
  const std::string_view host = authority_.empty() ? req_->host() : authority_;
  std::string_view routing_path = path_;
  if (path_slash_first_) {
    route_path_.assign("/").append(path_);
    routing_path = route_path_;
  }
  if (info_->tls == nullptr && routing_path.starts_with(tls::kAcmeChallengePrefix)) {
    std::string answer;
    if (tls::find_acme_challenge(routing_path.substr(tls::kAcmeChallengePrefix.size()), answer)) {
      local_reply(200, answer, false);
      return;
    }
  }
  route_ = listener_->routes.match(host, routing_path, *req_);
  cluster_index_ = -1;
  lb_avoid_.clear();
  if (route_ == nullptr) {
    flags_ |= accesslog::kNoRouteFound;
    reject(kRejectNoRoute);
    local_reply(404, "no route matched\n", false);
    return;
  }
  // A streamed body is kept (up to kReplayLimit) when a retry or a mirror
  // may need it again.
  replay_ok_ = !req_done_ && (route_->config->retry_policy.enabled() ||
                              !route_->config->request_mirror_policies.empty());
  if (!check_upgrade()) return;
  if (!listener_->filters.empty() && !run_request_filters(0)) return;
  forward();
}

void Stream::forward() {
  const config::Route& r = *route_->config;
  if (r.redirect || r.direct_response) {
    set_response_detail(r.redirect ? "redirect" : "direct_response");
    send_response(route_answer(r, info_->tls != nullptr, authority(), path()));
    return;
  }
  if (std::string p; rewrite_path(r, path(), p)) set_request_path(p);
  acquire_upstream(false);
}

// ---- the upstream and the request ----

void Stream::acquire_upstream(bool fresh) {
  if (cluster_index_ < 0) select_cluster();
  cluster_ = info_->worker->cluster_for(*snapshot_, cluster_index_);
  upstream::Endpoint* endpoint = choose_endpoint();
  if (endpoint == nullptr) return;  // answered
  attempt_.start(*cluster_, *endpoint);
  retry_token_.attempt_started();
  upstream_ = new_upstream(*this, fresh, *endpoint);
  alpn_switched_ = false;
  trace_.attempt_start(info_->worker->random());
  if (attempts_ < UINT8_MAX) ++attempts_;
  try_deadline_ = kNever;
  connecting_ = true;
  const auto t = cluster_->config().connect_timeout;
  connect_deadline_ = t.count() > 0 ? Clock::now() + t : kNever;
  codec_->update_deadline(*this);
  upstream_->start();
}

std::unique_ptr<UpstreamStream> Stream::new_upstream(UpstreamEvents& events, bool fresh,
                                                     upstream::Endpoint& endpoint) {
  using P = config::UpstreamProtocol;
  const P p = cluster_->config().protocol;
  // auto: HTTP/2 until the endpoint is known to have chosen HTTP/1.1 (most
  // TLS servers that offer h2 prefer it; the first connection's streams
  // wait on it rather than opening one connection each), HTTP/1.1 without
  // TLS (no ALPN), and upgrades always HTTP/1.1 (check_upgrade).
  const bool h2 = p == P::kH2 || p == P::kH2c ||
                  (p == P::kAuto && cluster_->tls() != nullptr && upgrade_.empty() &&
                   endpoint.alpn != upstream::Endpoint::Alpn::kHttp1);
  if (!h2) {
    if (spare_h1_) {
      static_cast<Http1UpstreamStream&>(*spare_h1_).recycle(*cluster_, events, fresh, &endpoint);
      return std::move(spare_h1_);
    }
    return std::make_unique<Http1UpstreamStream>(*cluster_, events, fresh, &endpoint);
  }
  return std::make_unique<Http2UpstreamStream>(*info_->worker, *cluster_, events, fresh, &endpoint);
}

void Stream::on_request_invalid(int status, std::string_view why) {
  if (!active_) return;
  SPDLOG_DEBUG("{}: bad request body: {}", peer_ip_, why);
  flags_ |= accesslog::kDownstreamProtocolError;
  release_upstream(false);
  local_reply(status, fmt::format("Bad Request: {}\n", why), true);
}

// ---- the response ----

void Stream::on_response_interim(const http::ResponseHead& head) {
  last_activity_ = core::CoarseClock::now();
  // 1xx go to HTTP/1.1 clients [RFC 9110 15.2], except a 100 when the
  // proxy already sent one for this request's Expect.
  if (version_minor_ == 0 || (head.status == 100 && continue_sent_) ||
      ds_writing_ != DownWrite::kNone) {
    if (ds_writing_ == DownWrite::kContinue) {
      response_waiting_ = true;  // after our own 100 Continue is written
      pending_interim_ = &head;
      return;
    }
    upstream_->consume_response_body(0);
    return;
  }
  interim_sent_ = true;
  ds_writing_ = DownWrite::kInterim;
  codec_->send_interim(*this, head);
}

void Stream::on_response_headers(http::ResponseHead& head, Framing framing) {
  try_deadline_ = kNever;
  count_response(head.status);
  if (retry_after_response(head)) return;
  drop_hedge();  // this attempt answered first
  forward_response_head(head, framing);
}

void Stream::forward_response_head(http::ResponseHead& head, Framing framing) {
  last_activity_ = core::CoarseClock::now();
  attempt_.responded(head.status);
  if (ds_writing_ != DownWrite::kNone) {
    // Behind our own 100 Continue: go on once it is written.
    response_waiting_ = true;
    pending_head_ = &head;
    pending_framing_ = framing;
    return;
  }
  resp_ = &head;
  resp_framing_ = framing;
  resp_head_done_ = true;
  status_ = head.status;
  if (head.status == 101 && !upgrade_.empty()) begin_tunnel();
  if (const int g = grpc_ ? grpc_status_of(head) : -1; g >= 0) grpc_status_ = int8_t(g);
  if (log_this_) {
    const auto& names = info_->worker->access_log()->config().response_headers;
    log_response_headers_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      const http::HeaderField* f = head.find(names[i]);
      log_response_headers_[i].assign(f != nullptr ? f->value : std::string_view());
    }
  }
  // Response filters run in reverse order.
  if (!listener_->filters.empty()) {
    in_filters_ = true;
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->on_response_headers(head, *this);
    }
    in_filters_ = false;
    // A filter answered in the upstream's place (a cache with a revalidated
    // or a stale entry): that answer goes out instead.
    if (filter_response_) {
      send_filter_response();
      return;
    }
    if (filter_reply_status_ != 0) {
      const int status = filter_reply_status_;
      filter_reply_status_ = 0;
      local_reply(status, filter_reply_body_, false);
      return;
    }
  }
  const http::HopByHop hop_by_hop(head);
  resp_skip_.assign(head.headers.size(), 0);
  for (size_t i = 0; i < head.headers.size(); ++i) {
    const std::string_view n = head.headers[i].name;
    if (hop_by_hop(n) || (!resp_remove_.empty() && listed(resp_remove_, n))) resp_skip_[i] = 1;
  }
  down_extra_.assign(resp_add_);
  OutgoingResponse& o = out_resp_;
  o.received = &head;
  o.response = &head;
  o.skip = &resp_skip_;
  o.extra = down_extra_;
  o.status = head.status;
  o.framing = resp_streamed_ && framing != Framing::kNone ? Framing::kUnknown : framing;
  if (o.framing == Framing::kLength && chunk_for_trailers()) {
    // An HTTP/2 upstream may end a body of known length with trailers, which
    // an HTTP/1.1 client that said "TE: trailers" can only get in the last
    // chunk [RFC 9112 7.1.2]: the body goes chunked and Content-Length,
    // never sent with a Transfer-Encoding [RFC 9112 6.2], is dropped.
    for (size_t i = 0; i < head.headers.size(); ++i) {
      if (http::iequals(head.headers[i].name, "content-length")) resp_skip_[i] = 1;
    }
    o.framing = Framing::kUnknown;
  }

  BodyBatch b;
  if (!next_response_body(b)) return;
  resp_pending_ = b.consumed;
  resp_done_ = b.end;
  resp_body_bytes_ += spans_size(down_body_);
  resp_started_ = true;
  ds_writing_ = DownWrite::kResponse;
  pass_response_trailers(b);
  codec_->send_response(*this, o, down_body_, b.raw_chunked, b.end);
  if (tunnel_) pump_tunnel_request();
}

bool Stream::next_response_body(BodyBatch& b) {
  down_body_.clear();
  b = upstream_->response_body(down_body_,
                               codec_->accepts_raw_chunked(*this) && !wants_response_data_);
  if (b.error != http::ParseError::kNone) {
    response_invalid();
    return false;
  }
  if (wants_response_data_) {
    // A filter may take the trailers into the body (grpc_web).
    if (b.end && b.trailers != nullptr && filters_response_trailers(*b.trailers)) {
      b.trailers = nullptr;
    }
    filters_response_data(down_body_, b.end);
    if (data_hook_answered()) return false;
  }
  return true;
}

void Stream::pass_response_trailers(const BodyBatch& b) {
  if (!b.end || b.trailers == nullptr) return;
  if (const int g = grpc_ ? grpc_status_of(*b.trailers) : -1; g >= 0) grpc_status_ = int8_t(g);
  codec_->set_response_trailers(*this, *b.trailers);
}

bool Stream::chunk_for_trailers() const {
  // HTTP/1.1 client (chunked possible), HTTP/2 upstream (trailers possible).
  if (req_ == nullptr || method_ == http::Method::kHead || !codec_->accepts_raw_chunked(*this) ||
      upstream_->accepts_raw_chunked()) {
    return false;
  }
  const http::HeaderField* te = req_->find("te");
  return te != nullptr && te->value.find("trailers") != std::string_view::npos;
}

void Stream::on_response_body() {
  if (!active_ || ds_writing_ != DownWrite::kNone) return;
  pump_response();
}

void Stream::pump_response() {
  last_activity_ = core::CoarseClock::now();
  BodyBatch b;
  if (!next_response_body(b)) return;
  resp_done_ = b.end;
  if (down_body_.empty() && !b.end) {
    // Nothing to forward yet (none, or only framing): wait for more.
    upstream_->consume_response_body(b.consumed);
    upstream_->await_response_body();
    return;
  }
  resp_pending_ = b.consumed;
  resp_body_bytes_ += spans_size(down_body_);
  ds_writing_ = DownWrite::kResponse;
  pass_response_trailers(b);
  codec_->send_body(*this, down_body_, b.raw_chunked, b.end);
}

void Stream::on_downstream_written(const error_code& ec) {
  const DownWrite what = ds_writing_;
  ds_writing_ = DownWrite::kNone;
  if (!active_) return;
  if (ec) {
    SPDLOG_DEBUG("{}: downstream write failed: {}", peer_ip_, ec.message());
    flags_ |= accesslog::kDownstreamConnectionTermination;
    abort_stream();
    return;
  }
  last_activity_ = core::CoarseClock::now();
  switch (what) {
    case DownWrite::kNone:
      return;
    case DownWrite::kContinue:
      if (response_waiting_) {
        response_waiting_ = false;
        if (pending_head_ != nullptr) {
          http::ResponseHead* h = pending_head_;
          pending_head_ = nullptr;
          forward_response_head(*h, pending_framing_);
        } else if (pending_interim_ != nullptr) {
          const http::ResponseHead* h = pending_interim_;
          pending_interim_ = nullptr;
          on_response_interim(*h);
        }
      }
      return;
    case DownWrite::kInterim:
      upstream_->consume_response_body(0);
      return;
    case DownWrite::kLocalReply:
      finish();
      return;
    case DownWrite::kResponse:
      upstream_->consume_response_body(resp_pending_);
      resp_pending_ = 0;
      if (resp_done_) {
        finish();
      } else {
        pump_response();
      }
      return;
  }
}

// ---- ends ----

bool Stream::begin_local_reply(int status) {
  if (resp_started_ || ds_writing_ != DownWrite::kNone) {
    abort_stream();
    return false;
  }
  release_upstream(false);
  status_ = static_cast<uint16_t>(status);
  return true;
}

void Stream::local_reply(int status, std::string_view body, bool close) {
  if (!begin_local_reply(status)) return;
  const bool closing = close || !req_done_ || us_writing_ || draining();
  filter_local_reply(status, "text/plain", body.size());
  if (filter_response_) {
    // A response hook answers in the proxy's place (a cache's stale entry
    // for an upstream that failed: stale-if-error).
    send_filter_response();
    return;
  }
  if (!grpc_) {
    write_local_reply(status, "text/plain", body, resp_add_, closing);
    return;
  }
  // gRPC clients read errors from grpc-status: a trailers-only response,
  // HTTP 200 (what Envoy does). The log keeps the proxy's HTTP status.
  std::string extra = resp_add_;
  std::string_view message = body;
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
  grpc_status_ = static_cast<int8_t>(grpc_status_for(status));
  extra += fmt::format("grpc-status: {}\r\ngrpc-message: ", int{grpc_status_});
  for (char c : message) {
    // Percent-encoded outside printable ASCII and '%' [gRPC over HTTP/2].
    if (c < 0x20 || c > 0x7e || c == '%') {
      extra += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      extra += c;
    }
  }
  extra += "\r\n";
  write_local_reply(200, "application/grpc", {}, extra, closing);
}

void Stream::send_filter_response() {
  http::LocalResponse r = std::move(*filter_response_);
  filter_response_.reset();
  if (!begin_local_reply(r.status)) return;
  std::string content_type;
  std::string lines;
  for (const auto& [name, value] : r.headers) {
    if (http::iequals(name, "content-type")) {
      content_type = value;
    } else if (!http::iequals(name, "content-length")) {
      lines.append(name).append(": ").append(value).append("\r\n");
    }
  }
  const std::shared_ptr<const std::string> shared = std::move(r.shared_body);
  filter_local_reply(r.status, content_type, shared ? shared->size() : r.body.size());
  filter_response_.reset();  // one answer per exchange
  lines.append(resp_add_);
  resp_add_ = std::move(lines);
  filter_reply_body_ = std::move(r.body);
  // The codecs copy the body into their output: a shared one is not kept.
  write_local_reply(r.status, content_type, shared ? std::string_view(*shared) : filter_reply_body_,
                    resp_add_, !req_done_ || us_writing_ || draining());
}

void Stream::write_local_reply(int status, std::string_view content_type, std::string_view body,
                               std::string_view extra_lines, bool closing) {
  if (log_this_) {
    // The headers of the reply the proxy writes, for %RESP(...)%.
    const auto& names = info_->worker->access_log()->config().response_headers;
    log_response_headers_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      std::string& v = log_response_headers_[i];
      if (names[i] == "content-type") {
        v = content_type;
      } else if (names[i] == "content-length") {
        v = std::to_string(body.size());
      } else if (names[i] == "connection" && closing) {
        v = "close";
      } else {
        v.clear();
      }
    }
  }
  resp_started_ = true;
  resp_done_ = true;
  ds_writing_ = DownWrite::kLocalReply;
  codec_->send_local_reply(*this, status, content_type, body, extra_lines, closing);
}

void Stream::finish() {
  end_request(true);
  // The whole request went upstream and the whole response came back: the
  // connection can carry another request.
  release_upstream(req_sent_ && resp_done_);
  end_filters();
  active_ = false;
  codec_->finished(*this);
}

void Stream::release_upstream(bool reusable) {
  drop_hedge();
  connecting_ = false;
  if (!upstream_) return;
  trace_.attempt_end(upstream_->host(), resp_head_done_ ? status_ : 0);
  attempt_.finish();
  retry_token_.attempt_ended();
  if (req_pending_ > 0 && !active_) req_pending_ = 0;
  upstream_->release(reusable && !us_writing_);
  if (auto* h1 = dynamic_cast<Http1UpstreamStream*>(upstream_.get())) {
    h1->detach();  // out of the cluster's queue too, as its destructor would
    spare_h1_ = std::move(upstream_);
  } else {
    upstream_.reset();
  }
  us_writing_ = false;  // a write still in flight is abandoned with the connection
  cluster_.reset();
}

bool Stream::draining() const { return info_->worker->draining(listener_->config->direction); }

}  // namespace sidecar::proxy
