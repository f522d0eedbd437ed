// Stream: the request's way upstream once an upstream stream is ready: its
// head (rewrites, forwarded headers, hop-by-hop removal), its body (streamed,
// or buffered for a filter or a replay), 100 Continue, the response deadline.
#include <algorithm>

#include <boost/asio/buffer.hpp>

#include "core/coarse_clock.h"
#include "http/local_reply.h"
#include "proxy/grpc.h"
#include "proxy/route_action.h"
#include "proxy/stream.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

namespace {

using Clock = Stream::Clock;
using core::kNever;

// The 100 Continue the proxy sends for a request's Expect.
const http::ResponseHead& continue_head() {
  static const http::ResponseHead head = [] {
    http::ResponseHead h;
    h.status = 100;
    h.reason = "Continue";
    return h;
  }();
  return head;
}

}  // namespace

void Stream::on_upstream_ready(const error_code& ec) {
  if (ec == make_error_code(upstream::AttemptError::kAlpnMismatch) && attempt_.endpoint() &&
      upgrade_.empty() && !alpn_switched_) {
    // protocol: auto, and the endpoint chose the other protocol by ALPN
    // (now remembered): the same attempt starts again with that codec, on
    // the connection just made when it went to the HTTP/1.1 pool. Once:
    // an upgrade (HTTP/1.1 only) to an endpoint that picks h2 fails.
    alpn_switched_ = true;
    upstream_->release(false);
    upstream_ = new_upstream(*this, false, *attempt_.endpoint());
    upstream_->start();
    return;
  }
  connecting_ = false;
  connect_deadline_ = kNever;
  if (ec) {
    upstream_connect_failed(ec);
    return;
  }
  upstream_used_ = true;
  upstream_start_ = Clock::now();
  upstream_host_.assign(upstream_->host());
  endpoint_stats_ = upstream_->endpoint_stats();
  endpoint_stats_->requests_total.add();

  build_request_head(*upstream_, out_req_, up_extra_);
  up_body_.clear();
  BodyBatch b;
  if (!req_done_ || req_held_ || prebuffered_) {
    if (req_held_) {
      // A retry: the whole request is still held; send it again.
      b = BodyBatch{req_pending_, true, req_raw_chunked_};
      up_body_ = held_body_;
      if (req_trailers_ != nullptr) upstream_->set_request_trailers(*req_trailers_);
    } else {
      if (prebuffered_) {
        // What buffer_request_body() read goes first (already released
        // from the codec: nothing to consume for it).
        prebuffered_ = false;
        b = BodyBatch{0, req_done_, false};
        if (req_done_ && !prebuffer_trailers_.empty()) b.trailers = &prebuffer_trailers_;
        up_body_.clear();
        if (!prebuffer_.empty()) up_body_.emplace_back(prebuffer_.data(), prebuffer_.size());
      } else {
        b = read_request_body();
      }
      if (!pass_request_body(b)) return;
      req_raw_chunked_ = b.raw_chunked;
      req_pending_ = b.consumed;
      req_done_ = b.end;
      if (b.end) {
        req_held_ = true;  // nothing released yet: a retry can resend all of it
        held_body_ = up_body_;
      } else if (replay_ok_) {
        // These bytes, and the head's, are released once written.
        keep_request_head();
        hold_for_replay(up_body_, false);
      }
      if (!retried_) req_body_bytes_ += boost::asio::buffer_size(up_body_);
    }
  }
  // Envoy's default: the proxy answers 100-continue itself, once it knows
  // where the body goes, instead of forwarding the expectation.
  if (expect_continue_ && !req_done_ && b.consumed == 0 && version_minor_ == 1 &&
      ds_writing_ == DownWrite::kNone && !continue_sent_) {
    continue_sent_ = true;
    ds_writing_ = DownWrite::kContinue;
    codec_->send_interim(*this, continue_head());
    if (!active_) return;
  }
  us_writing_ = true;
  upstream_->send_request(out_req_, up_body_, b.raw_chunked, req_done_);
}

void Stream::build_request_head(const UpstreamStream& up, OutgoingRequest& o, std::string& extra) {
  const http::RequestHead& r = *req_;
  const http::HopByHop hop_by_hop(r);
  req_skip_.assign(r.headers.size(), 0);
  bool has_proto = false, has_fwd_host = false;
  std::string_view xfcc_in;  // append_forward: what came in, to add ours to
  const config::Listener& l = *listener_->config;
  for (size_t i = 0; i < r.headers.size(); ++i) {
    const std::string_view n = r.headers[i].name;
    bool keep = true;
    if (hop_by_hop(n)) {
      keep = false;  // framing is the encoder's business
    } else {
      switch (n.size()) {
        case 4:
          keep = authority_.empty() || !http::iequals(n, "host");
          break;
        case 6:
          keep = !r.expect_continue || !http::iequals(n, "expect");
          break;
        case 16:
          has_fwd_host = has_fwd_host || http::iequals(n, "x-forwarded-host");
          break;
        case 17:
          if (http::iequals(n, "x-forwarded-proto")) {
            // Behind TLS termination the scheme is known: a client's claim is dropped.
            has_proto = info_->tls == nullptr;
            keep = info_->tls == nullptr;
          }
          break;
        case 23:
          if (route_->config->include_request_attempt_count &&
              http::iequals(n, "x-sidecar-attempt-count")) {
            keep = false;  // ours replaces it
          } else if (http::iequals(n, "x-forwarded-client-cert")) {
            // Only the sidecar that verified a certificate may speak for it.
            keep = false;
            if (l.forward_client_cert == config::ForwardClientCert::kAppendForward) {
              xfcc_in = r.headers[i].value;
            }
          }
          break;
        default:
          break;
      }
    }
    if (keep && !req_remove_.empty() && listed(req_remove_, n)) keep = false;
    // A filter changes the body's length: the encoder frames it.
    if (keep && req_streamed_ && n.size() == 14 && http::iequals(n, "content-length")) keep = false;
    if (keep && trace_.active() && tracing::StreamTrace::replaces(n)) keep = false;
    req_skip_[i] = keep ? 0 : 1;
  }

  std::string& x = extra;
  x.clear();
  const std::string_view host = authority_.empty() ? r.host() : authority_;
  x.append("x-forwarded-for: ").append(peer_ip_).append("\r\n");
  if (!has_proto) {
    x.append(info_->tls != nullptr ? "x-forwarded-proto: https\r\n"
                                   : "x-forwarded-proto: http\r\n");
  }
  if (l.forward_client_cert != config::ForwardClientCert::kSanitize &&
      (!xfcc_in.empty() || !info_->xfcc().empty())) {
    x.append("x-forwarded-client-cert: ").append(xfcc_in);
    if (!xfcc_in.empty() && !info_->xfcc().empty()) x.append(",");
    x.append(info_->xfcc()).append("\r\n");
  }
  if (!has_fwd_host && !host.empty()) x.append("x-forwarded-host: ").append(host).append("\r\n");
  if (request_id_generated_) {
    x.append("x-request-id: ").append(request_id_, sizeof(request_id_)).append("\r\n");
  }
  trace_.append_headers(x);
  if (route_->config->include_request_attempt_count) {
    x.append("x-sidecar-attempt-count: ").append(std::to_string(attempts_)).append("\r\n");
  }
  x.append(req_add_);

  o.received = &r;
  o.request = &r;
  o.skip = &req_skip_;
  o.extra = x;
  o.method = r.method_name;
  o.path = path_overridden_ ? std::string_view(path_override_) : path_;
  o.slash_first = path_slash_first_ && !path_overridden_;
  o.host_in_fields = authority_.empty() && r.host_index >= 0;
  o.authority = !authority_.empty() ? authority_ : r.host_index >= 0 ? r.host() : up.host();
  o.tls = info_->tls != nullptr;
  if (const config::Route& rc = *route_->config; !rc.host_rewrite.empty() || rc.auto_host_rewrite) {
    const upstream::Endpoint* e = upstream_->endpoint();
    if (!rc.host_rewrite.empty() || e != nullptr) {
      host_rewrite_ = !rc.host_rewrite.empty()
                          ? rc.host_rewrite
                          : endpoint_authority(*e, cluster_->config().tls.enabled);
      if (r.host_index >= 0) req_skip_[r.host_index] = 1;
      o.host_in_fields = false;
      o.authority = host_rewrite_;
    }
  }
  o.framing = r.body == http::BodyKind::kNone                              ? Framing::kNone
              : r.body == http::BodyKind::kContentLength && !req_streamed_ ? Framing::kLength
                                                                           : Framing::kUnknown;
  o.upgrade = upgrade_;
}

void Stream::on_upstream_written(const error_code& ec) {
  us_writing_ = false;
  if (!active_) return;
  if (ec) {
    on_upstream_failed(Failure::kReset, ec);
    return;
  }
  last_activity_ = core::CoarseClock::now();
  if (req_done_) {
    if (!req_sent_) on_request_sent();
    // The attempt's per_try_timeout runs from the end of its request.
    const auto per_try = route_->config->retry_policy.per_try_timeout;
    if (per_try.count() > 0 && !resp_head_done_) {
      try_deadline_ = Clock::now() + per_try;
      codec_->update_deadline(*this);
    }
    return;
  }
  codec_->consume_request_body(*this, req_pending_);
  req_pending_ = 0;
  codec_->await_request_body(*this);
}

void Stream::on_request_sent() {
  req_sent_ = true;
  auto t = std::chrono::duration_cast<std::chrono::milliseconds>(route_->config->timeout);
  // A gRPC call's own deadline, capped by the route's.
  if (const auto g = grpc_ ? grpc_timeout(*req_) : std::chrono::milliseconds(); g.count() > 0) {
    t = t.count() > 0 ? std::min(t, g) : g;
  }
  response_deadline_ = t.count() > 0 ? Clock::now() + t : kNever;
  codec_->update_deadline(*this);
  if (!route_->config->request_mirror_policies.empty()) mirror_request();
}

void Stream::on_request_body() {
  if (active_ && buffering_) {
    pull_buffered_body();
    return;
  }
  if (!active_ || us_writing_ || upstream_ == nullptr || connecting_) return;
  last_activity_ = core::CoarseClock::now();
  up_body_.clear();
  const BodyBatch b = read_request_body();
  if (!pass_request_body(b)) return;
  req_done_ = b.end;
  req_body_bytes_ += boost::asio::buffer_size(up_body_);
  if (replay_ok_) hold_for_replay(up_body_, b.end);
  if (up_body_.empty() && !b.end) {
    // Nothing to forward yet (none, or only framing): wait for more.
    codec_->consume_request_body(*this, b.consumed);
    codec_->await_request_body(*this);
    return;
  }
  req_pending_ = b.consumed;
  us_writing_ = true;
  upstream_->send_body(up_body_, b.raw_chunked, b.end);
}

BodyBatch Stream::read_request_body() {
  return codec_->request_body(*this, up_body_,
                              upstream_->accepts_raw_chunked() && !wants_request_data_ &&
                                  !body_was_buffered_ &&
                                  route_->config->request_mirror_policies.empty());
}

bool Stream::pass_request_body(const BodyBatch& b) {
  if (b.error != http::ParseError::kNone) {
    on_request_invalid(http::status_for(b.error), http::to_string(b.error));
    return false;
  }
  if (wants_request_data_) {
    filters_request_data(up_body_, b.end);
    if (data_hook_answered()) return false;
  }
  if (b.end && b.trailers != nullptr) {
    req_trailers_ = b.trailers;
    upstream_->set_request_trailers(*b.trailers);
  }
  return true;
}

void Stream::start_buffering(size_t filter) {
  buffer_requested_ = false;
  filters_paused_at_ = filter;
  buffering_ = true;
  body_was_buffered_ = true;
  prebuffer_.clear();
  prebuffer_trailers_.clear();
  // Releasing body bytes lets the codec reuse its read buffer: the head
  // (path, fields) must not live there any more.
  if (!req_done_) keep_request_head();
  // The client may wait for a 100 Continue before it sends the body.
  if (expect_continue_ && !req_done_ && version_minor_ == 1 && ds_writing_ == DownWrite::kNone &&
      !continue_sent_) {
    continue_sent_ = true;
    ds_writing_ = DownWrite::kContinue;
    codec_->send_interim(*this, continue_head());
    if (!active_) return;
  }
  pull_buffered_body();
}

void Stream::pull_buffered_body() {
  if (!req_done_) {
    last_activity_ = core::CoarseClock::now();
    Spans batch;
    const BodyBatch b = codec_->request_body(*this, batch, false);
    if (b.error != http::ParseError::kNone) {
      buffering_ = false;
      on_request_invalid(http::status_for(b.error), http::to_string(b.error));
      return;
    }
    for (const auto& span : batch)
      prebuffer_.append(static_cast<const char*>(span.data()), span.size());
    if (b.end && b.trailers != nullptr) prebuffer_trailers_ = *b.trailers;  // released below
    req_done_ = b.end;
    req_body_bytes_ += boost::asio::buffer_size(batch);
    codec_->consume_request_body(*this, b.consumed);
    if (!b.end && prebuffer_.size() <= buffer_limit_) {
      codec_->await_request_body(*this);
      return;
    }
  }
  buffering_ = false;
  prebuffered_ = true;
  const size_t at = filters_paused_at_;
  if (at >= filters_.size()) return;
  // Whole only when it fits: a last batch may take it past the limit.
  const bool whole = req_done_ && prebuffer_.size() <= buffer_limit_;
  const std::string_view body(prebuffer_);
  filters_[at]->on_request_body_buffered(whole ? body : body.substr(0, buffer_limit_), whole,
                                         *this);
}

}  // namespace sidecar::proxy
