// Stream: what happens when an upstream or the downstream fails, and the
// stream's deadlines (connect, response, per-try, retry back-off, idle).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/stream.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

namespace {

using Clock = Stream::Clock;
using core::kNever;

}  // namespace

// ---- failures ----

bool Stream::can_retry() const {
  // Only a request on a reused connection that the upstream closed before
  // answering anything: the usual keep-alive race, where the upstream closed
  // an idle connection just as the request was sent. Retrying is safe only
  // for idempotent methods [RFC 9110 9.2.2] whose bytes are all still here.
  return upstream_ != nullptr && upstream_->reused() && !retried_ && req_held_ && req_done_ &&
         !resp_head_done_ && !interim_sent_ && idempotent(method_);
}

void Stream::upstream_connect_failed(const error_code& ec) {
  if (ec == make_error_code(upstream::AttemptError::kOverflow)) {
    // A circuit breaker refused a new connection (Envoy: 503 UO at once).
    flags_ |= accesslog::kUpstreamOverflow;
    attempt_.cancel();
    release_upstream(false);
    local_reply(503, "upstream connect error: overflow\n", false);
    return;
  }
  attempt_.finish({upstream::AttemptOutcome::Kind::kConnectFailure});
  // A TLS failure says why ("certificate verify failed: hostname mismatch").
  const bool tls_failed = !upstream_->failure().empty();
  const std::string why =
      tls_failed ? fmt::format("TLS handshake failed: {}", upstream_->failure()) : ec.message();
  SPDLOG_DEBUG("{}: upstream connect to {} failed: {}", peer_ip_, upstream_->host(), why);
  static thread_local Clock::time_point last_warning;  // at most one a second per worker
  if (tls_failed && Clock::now() - last_warning > std::chrono::seconds(1)) {
    last_warning = Clock::now();
    spdlog::warn("upstream {} of cluster {}: {}", upstream_->host(), cluster_->config().name, why);
  }
  if (retry_after_failure(AttemptFailure::kConnectFailure)) return;
  flags_ |= accesslog::kUpstreamConnectionFailure;
  release_upstream(false);
  local_reply(503, fmt::format("upstream connect error: {}\n", why), false);
}

void Stream::response_invalid() {
  SPDLOG_DEBUG("{}: invalid response body from {}", peer_ip_, upstream_host_);
  flags_ |= accesslog::kUpstreamProtocolError;
  release_upstream(false);
  if (resp_started_) {
    abort_stream();  // the response has started: all that is left is to cut it short
    return;
  }
  local_reply(502, "upstream sent an invalid response body\n", false);
}

void Stream::on_upstream_failed(Failure what, const error_code& ec) {
  if (!active_) return;
  if (what == Failure::kProtocol) {
    flags_ |= accesslog::kUpstreamProtocolError;
    release_upstream(false);
    if (resp_started_) {
      abort_stream();
      return;
    }
    local_reply(502, fmt::format("upstream sent an invalid response: {}\n", ec.message()), false);
    return;
  }
  if (!resp_started_) {
    if (!resp_head_done_ && can_retry()) {
      SPDLOG_DEBUG("{}: reused upstream connection to {} closed; retrying on a new one", peer_ip_,
                   upstream_->host());
      retried_ = true;
      release_upstream(false);
      acquire_upstream(true);
      return;
    }
    if (endpoint_stats_ != nullptr) endpoint_stats_->resets.add();
    if (!resp_head_done_ && !interim_sent_ &&
        retry_after_failure(upstream_->refused() ? AttemptFailure::kRefusedStream
                                                 : AttemptFailure::kReset)) {
      return;
    }
    flags_ |= accesslog::kUpstreamConnectionTermination;
    const bool nothing = !resp_head_done_ && !interim_sent_;
    const bool eof = what == Failure::kClosed;
    std::string body =
        nothing ? (eof ? std::string("upstream closed the connection before responding\n")
                       : fmt::format("upstream reset before response: {}\n", ec.message()))
                : std::string("upstream closed the connection in the middle of the response\n");
    release_upstream(false);
    local_reply(502, body, false);
    return;
  }
  SPDLOG_DEBUG("{}: upstream {} failed mid-response: {}", peer_ip_, upstream_host_, ec.message());
  flags_ |= accesslog::kUpstreamConnectionTermination;
  if (endpoint_stats_ != nullptr) endpoint_stats_->resets.add();
  abort_stream();  // the client sees a truncated response, not a complete wrong one
}

void Stream::on_downstream_reset(const error_code& ec) {
  if (!active_) return;
  if (req_ != nullptr && !resp_done_) {
    SPDLOG_DEBUG("{}: downstream closed during the request: {}", peer_ip_,
                 ec ? ec.message() : "end of stream");
    flags_ |= accesslog::kDownstreamConnectionTermination;
  }
  end_request(false);
  release_upstream(false);
  end_filters();
  active_ = false;
}

void Stream::abort_stream() {
  end_request(false);
  release_upstream(false);
  end_filters();
  active_ = false;
  codec_->reset(*this);
}

// ---- timeouts ----

Clock::time_point Stream::deadline() const {
  if (!active_) return kNever;
  Clock::time_point d = kNever;
  if (connecting_) d = std::min(d, connect_deadline_);
  if (req_sent_ && !resp_done_) d = std::min(d, response_deadline_);
  d = std::min(d, retry_at_);
  if (!resp_head_done_) d = std::min(d, try_deadline_);
  const auto idle = idle_timeout();
  if (idle.count() > 0) d = std::min(d, last_activity_ + idle);
  return d;
}

void Stream::on_timeout(Clock::time_point now) {
  if (!active_) return;
  if (connecting_ && now >= connect_deadline_ && upstream_ && upstream_->queued()) {
    // No connection freed up within connect_timeout: 503 UO, and the
    // endpoint is not blamed (outlier detection, connect failures).
    upstream_connect_failed(make_error_code(upstream::AttemptError::kOverflow));
    return;
  }
  if (connecting_ && now >= connect_deadline_) {
    flags_ |= accesslog::kUpstreamConnectionFailure;
    attempt_.finish({upstream::AttemptOutcome::Kind::kConnectFailure});
    if (stats::EndpointStats* es = upstream_ ? upstream_->endpoint_stats() : nullptr) {
      es->connect_failures.add();
      es->connect_timeouts.add();
    }
    if (retry_after_failure(AttemptFailure::kConnectFailure)) return;
    release_upstream(false);
    local_reply(503, "upstream connect error: timed out\n", false);
    return;
  }
  if (req_sent_ && !resp_done_ && now >= response_deadline_) {
    flags_ |= accesslog::kUpstreamRequestTimeout;
    attempt_.finish({upstream::AttemptOutcome::Kind::kTimeout});
    if (endpoint_stats_ != nullptr) endpoint_stats_->request_timeouts.add();
    release_upstream(false);
    if (resp_started_) {
      abort_stream();
    } else {
      local_reply(504, "upstream request timeout\n", false);
    }
    return;
  }
  if (now >= retry_at_) {
    retry_at_ = kNever;  // the back-off is over
    acquire_upstream(false);
    return;
  }
  if (now >= try_deadline_ && !resp_head_done_ && upstream_ != nullptr) {
    try_deadline_ = kNever;
    if (stats::EndpointStats* es = upstream_->endpoint_stats()) es->per_try_timeouts.add();
    const config::RetryPolicy& p = route_->config->retry_policy;
    if (p.hedge_on_per_try_timeout) {
      // Hedging: the attempt goes on, and another one starts beside it.
      if (hedge_ == nullptr && retry_allowed(false) && policy_retries_ < p.num_retries) {
        start_hedge();
      }
      return;
    }
    attempt_.finish({upstream::AttemptOutcome::Kind::kTimeout});
    if (retry_after_failure(AttemptFailure::kPerTryTimeout)) return;
    flags_ |= accesslog::kUpstreamRequestTimeout;
    release_upstream(false);
    local_reply(504, "upstream request timeout\n", false);
    return;
  }
  const auto idle = idle_timeout();
  if (idle.count() == 0 || last_activity_ + idle > now) return;
  // Nothing moved in either direction for stream_idle_timeout.
  flags_ |= accesslog::kStreamIdleTimeout;
  release_upstream(false);
  if (resp_started_) {
    abort_stream();
  } else {
    local_reply(req_done_ ? 504 : 408, "stream idle timeout\n", true);
  }
}

}  // namespace sidecar::proxy
