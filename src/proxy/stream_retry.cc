// The stream's retries, hedges and mirrors (a route's retry_policy and
// request_mirror_policies; docs/resilience.md). The decisions themselves are
// in retry.h; this is the part that drives upstream attempts.
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/local_reply.h"
#include "proxy/http1_upstream.h"
#include "proxy/http2_upstream.h"
#include "proxy/stream.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

namespace {

using Clock = Stream::Clock;
constexpr auto kNever = Clock::time_point::max();

// "users.svc:8080" -> "users.svc-shadow:8080" (Envoy's mirror Host).
std::string shadow_host(std::string_view host) {
  size_t colon = std::string_view::npos;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close != std::string_view::npos && close + 1 < host.size() && host[close + 1] == ':') {
      colon = close + 1;
    }
  } else {
    colon = host.rfind(':');
  }
  if (colon == std::string_view::npos) return std::string(host) + "-shadow";
  return fmt::format("{}-shadow{}", host.substr(0, colon), host.substr(colon));
}

}  // namespace

// ---- the request body kept for another attempt ----

void Stream::hold_for_replay(const Spans& body, bool end) {
  if (!replay_ok_) return;
  size_t size = 0;
  for (const auto& b : body) size += b.size();
  if (replay_.size() + size > kReplayLimit) {
    // Outgrew the buffer: this request is neither retried nor mirrored.
    replay_ok_ = false;
    std::string().swap(replay_);
    return;
  }
  for (const auto& b : body) replay_.append(static_cast<const char*>(b.data()), b.size());
  if (end) {
    req_held_ = true;
    held_body_.assign(1, boost::asio::buffer(replay_));
  }
}

void Stream::keep_request_head() {
  if (req_ == &kept_head_) return;
  const http::RequestHead& r = *req_;
  kept_head_bytes_.assign(r.head);
  kept_head_ = r;
  const char* from = r.head.data();
  const char* to = kept_head_bytes_.data();
  const size_t size = r.head.size();
  auto rebase = [&](std::string_view& v) {
    if (v.data() >= from && v.data() + v.size() <= from + size) {
      v = std::string_view(to + (v.data() - from), v.size());
    }
  };
  rebase(kept_head_.head);
  rebase(kept_head_.method_name);
  rebase(kept_head_.target);
  for (http::HeaderField& f : kept_head_.headers) {
    rebase(f.name);
    rebase(f.value);
  }
  rebase(path_);
  rebase(authority_);
  req_ = &kept_head_;
}

// ---- retries ----

bool Stream::retry_allowed(bool unprocessed) const {
  if (route_ == nullptr || resp_started_ || interim_sent_ || !req_done_ || !req_held_) {
    return false;
  }
  const config::RetryPolicy& p = route_->config->retry_policy;
  return unprocessed || idempotent(method_) || p.retry_non_idempotent;
}

bool Stream::retry_after_failure(AttemptFailure failure) {
  if (hedge_ != nullptr) {
    // A hedged attempt is still out: it carries on alone.
    promote_hedge();
    return true;
  }
  if (route_ == nullptr) return false;
  const config::RetryPolicy& p = route_->config->retry_policy;
  if (!p.enabled() || !retriable(p, failure) || !retry_allowed(unprocessed(failure))) {
    return false;
  }
  if (policy_retries_ >= p.num_retries) {
    flags_ |= accesslog::kUpstreamRetryLimitExceeded;
    if (stats::EndpointStats* es = upstream_ ? upstream_->endpoint_stats() : endpoint_stats_) {
      es->retry_exhausted.add();
    }
    return false;
  }
  // The cluster's circuit breaker bounds retries in flight (max_retries or
  // retry_budget): beyond it the failure stands.
  if (!retry_token_.acquire(cluster_->breaker_ptr())) return false;
  retry_after_.reset();
  schedule_retry(retry_back_off(p, policy_retries_ + 1, info_->worker->random().next(), {}));
  return true;
}

bool Stream::retry_after_response(const http::ResponseHead& head) {
  const config::RetryPolicy& p = route_->config->retry_policy;
  if (!p.enabled() || !retriable(p, head.status) || !retry_allowed(false)) {
    if (policy_retries_ > 0 && endpoint_stats_ != nullptr) endpoint_stats_->retry_successes.add();
    return false;
  }
  if (hedge_ != nullptr) {
    // The other attempt may do better: wait for it instead.
    promote_hedge();
    return true;
  }
  if (policy_retries_ >= p.num_retries) {
    flags_ |= accesslog::kUpstreamRetryLimitExceeded;
    if (endpoint_stats_ != nullptr) endpoint_stats_->retry_exhausted.add();
    return false;
  }
  if (!retry_token_.acquire(cluster_->breaker_ptr())) return false;  // the breaker is full
  retry_after_.reset();
  if (const http::HeaderField* f = head.find("retry-after")) {
    retry_after_ = parse_retry_after(f->value, static_cast<int64_t>(std::time(nullptr)));
  }
  SPDLOG_DEBUG("{}: {} from {}: retrying", peer_ip_, head.status, upstream_host_);
  schedule_retry(
      retry_back_off(p, policy_retries_ + 1, info_->worker->random().next(), retry_after_));
  return true;
}

void Stream::schedule_retry(std::chrono::milliseconds delay) {
  ++policy_retries_;
  if (stats::EndpointStats* es = upstream_ ? upstream_->endpoint_stats() : endpoint_stats_) {
    es->retries.add();
  }
  // The attempt is abandoned (an HTTP/1.1 connection with a response in
  // flight cannot be reused); the held request goes out again, to another
  // endpoint when there is one (Envoy's previous_hosts predicate).
  if (const upstream::Endpoint* e = attempt_.last_endpoint()) lb_avoid_.push_back(e);
  release_upstream(false);
  resp_head_done_ = false;
  if (delay.count() <= 0) {
    acquire_upstream(false);
    return;
  }
  retry_at_ = Clock::now() + delay;
  codec_->update_deadline(*this);
}

// ---- hedging ----

void Stream::start_hedge() {
  upstream::Endpoint* endpoint = choose_hedge_endpoint();
  if (endpoint == nullptr) return;  // a circuit breaker is full: no hedge
  ++policy_retries_;
  if (attempts_ < UINT8_MAX) ++attempts_;
  if (stats::EndpointStats* es = upstream_->endpoint_stats()) {
    es->hedges.add();
    es->retries.add();
  }
  hedge_events_.promoted = hedge_events_.writing = hedge_events_.connected = false;
  hedge_attempt_.start(*cluster_, *endpoint);
  hedge_ = new_upstream(hedge_events_, false, *endpoint);
  hedge_->start();
}

void Stream::send_hedge_request() {
  build_request_head(*hedge_, hedge_req_, hedge_extra_);
  hedge_body_ = held_body_;
  if (req_trailers_ != nullptr) hedge_->set_request_trailers(*req_trailers_);
  if (stats::EndpointStats* es = hedge_->endpoint_stats()) es->requests_total.add();
  hedge_events_.writing = true;
  hedge_->send_request(hedge_req_, hedge_body_, req_raw_chunked_, true);
}

void Stream::drop_hedge() {
  hedge_attempt_.finish();
  if (hedge_ == nullptr) return;
  hedge_->release(false);
  hedge_.reset();
}

void Stream::promote_hedge() {
  attempt_.finish();  // the first attempt is abandoned
  attempt_.swap(hedge_attempt_);
  if (upstream_ != nullptr) {
    trace_.attempt_end(upstream_->host(), 0);
    upstream_->release(false);
  }
  upstream_ = std::move(hedge_);
  hedge_events_.promoted = true;
  trace_.attempt_start(info_->worker->random());
  us_writing_ = hedge_events_.writing;
  try_deadline_ = kNever;
  connecting_ = !hedge_events_.connected;
  const auto t = cluster_->config().connect_timeout;
  connect_deadline_ = connecting_ && t.count() > 0 ? Clock::now() + t : kNever;
  if (hedge_events_.connected) {
    upstream_host_.assign(upstream_->host());
    endpoint_stats_ = upstream_->endpoint_stats();
  }
  codec_->update_deadline(*this);
}

void Stream::HedgeEvents::on_upstream_ready(const error_code& ec) {
  if (promoted) {
    s_.on_upstream_ready(ec);
    return;
  }
  if (ec) {
    s_.drop_hedge();
    return;
  }
  connected = true;
  s_.send_hedge_request();
}

void Stream::HedgeEvents::on_upstream_written(const error_code& ec) {
  writing = false;
  if (promoted) {
    s_.on_upstream_written(ec);
  } else if (ec) {
    s_.drop_hedge();
  }
}

void Stream::HedgeEvents::on_response_interim(const http::ResponseHead& head) {
  if (promoted) {
    s_.on_response_interim(head);
  } else {
    s_.hedge_->consume_response_body(0);  // only the final response counts
  }
}

void Stream::HedgeEvents::on_response_headers(http::ResponseHead& head, Framing framing) {
  if (!promoted) {
    // The hedge answered first: the first attempt is released.
    s_.promote_hedge();
    s_.upstream_host_.assign(s_.upstream_->host());
    s_.endpoint_stats_ = s_.upstream_->endpoint_stats();
  }
  s_.on_response_headers(head, framing);
}

void Stream::HedgeEvents::on_response_body() {
  if (promoted) s_.on_response_body();
}

void Stream::HedgeEvents::on_upstream_failed(Failure what, const error_code& ec) {
  if (promoted) {
    s_.on_upstream_failed(what, ec);
  } else {
    s_.drop_hedge();
  }
}

// ---- responses by class ----

void Stream::count_response(int status) {
  stats::EndpointStats* es = upstream_ ? upstream_->endpoint_stats() : nullptr;
  if (es != nullptr && status >= 100 && status <= 599) es->responses[status / 100 - 1].add();
}

// ---- mirroring ----

void Stream::mirror_request() {
  if (!req_held_) return;  // the body outgrew kReplayLimit
  std::optional<http::ClientRequest> copy;
  for (const config::MirrorPolicy& m : route_->config->request_mirror_policies) {
    if (m.fraction < 1.0) {
      const double draw = static_cast<double>(info_->worker->random().next() >> 11) * 0x1.0p-53;
      if (draw >= m.fraction) continue;
    }
    if (!copy) {
      copy.emplace();
      http::ClientRequest& c = *copy;
      // What the stream adds for the upstream (x-forwarded-*, x-request-id,
      // filter edits) comes with it.
      copy_request_head(c, up_extra_);
      c.authority = shadow_host(c.authority);
      for (const auto& b : held_body_) c.body.append(static_cast<const char*>(b.data()), b.size());
      const auto timeout = route_->config->timeout;
      c.timeout = timeout.count() > 0 ? timeout : std::chrono::milliseconds(15000);
    }
    // Fire and forget: the answer is dropped, whatever it is.
    info_->worker->http_client().send(m.cluster, *copy, [](http::ClientResponse) {});
  }
}

}  // namespace sidecar::proxy
