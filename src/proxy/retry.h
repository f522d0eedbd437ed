// Retry decisions of a route's retry_policy (Envoy's RetryState; docs/
// resilience.md): which outcomes of an upstream attempt are retried, and how
// long to wait before the next attempt. Pure functions, any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config/config.h"
#include "http/http1_parser.h"

namespace sidecar::proxy {

// How an attempt ended without a response head.
enum class AttemptFailure : uint8_t {
  kConnectFailure,  // refused, unreachable, TLS handshake failed, connect timeout
  kReset,           // closed or reset before the response head
  kRefusedStream,   // HTTP/2 REFUSED_STREAM or beyond a GOAWAY: not processed
  kPerTryTimeout,   // no response head within per_try_timeout
};

// Whether `policy` retries an attempt that failed so. Envoy's rules: 5xx
// covers every failure; gateway-error connect failures and per-try timeouts;
// reset every failure but connect failures; connect-failure and
// refused-stream only their own.
bool retriable(const config::RetryPolicy& policy, AttemptFailure failure);
// Whether `policy` retries a response with this status: 5xx (any 5xx),
// gateway-error (502, 503, 504), retriable-4xx (409), and
// retriable_status_codes.
bool retriable(const config::RetryPolicy& policy, int status);
// Whether a method is idempotent [RFC 9110 9.2.2] (GET, HEAD, OPTIONS, PUT,
// DELETE; TRACE is not proxied): safe to send again.
constexpr bool idempotent(http::Method m) {
  return m == http::Method::kGet || m == http::Method::kHead || m == http::Method::kOptions ||
         m == http::Method::kPut || m == http::Method::kDelete;
}

// Whether the failure proves the request never reached the application, so
// that a non-idempotent request may be sent again.
constexpr bool unprocessed(AttemptFailure f) {
  return f == AttemptFailure::kConnectFailure || f == AttemptFailure::kRefusedStream;
}

// The wait before retry number `retry` (1 for the first retry): full jitter
// over an exponential interval, uniform in [0, min(base * 2^(retry-1), max)).
// A Retry-After from the upstream replaces it, capped at max_interval.
// `random` is a uniformly distributed 64-bit value.
std::chrono::milliseconds retry_back_off(const config::RetryPolicy& policy, uint32_t retry,
                                         uint64_t random,
                                         std::optional<std::chrono::seconds> retry_after);

// A Retry-After field value [RFC 9110 10.2.3]: delay-seconds, or an HTTP-date
// taken relative to `now` (seconds since the Unix epoch). nullopt when
// malformed.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, int64_t now);

}  // namespace sidecar::proxy
