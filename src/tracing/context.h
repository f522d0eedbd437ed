// Trace context propagation: W3C Trace Context (`traceparent`, `tracestate`,
// https://www.w3.org/TR/trace-context/ level 1) and Zipkin's B3 (the single
// `b3` header and the multi `x-b3-*` headers,
// https://github.com/openzipkin/b3-propagation), and the sampling decision.
//
// Pure functions on strings, no allocation except for `tracestate`; safe on
// any thread. Parsers never throw: malformed input is "no context" (the
// specifications say to start a new trace then).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sidecar::tracing {

using TraceId = std::array<uint8_t, 16>;  // all zero: invalid
using SpanId = std::array<uint8_t, 8>;    // all zero: invalid

// What a caller sent us.
struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};         // the caller's span: the parent of ours
  SpanId parent_span_id{};  // B3 only: the caller's parent (informational)
  // The caller's sampling decision: 1 sampled, 0 not sampled, -1 deferred
  // (B3 without a sampled flag: the receiver decides).
  int8_t sampled = -1;
  bool debug = false;      // B3 "d" / x-b3-flags: 1 (implies sampled)
  std::string tracestate;  // W3C only, passed on unchanged
};

bool valid(const TraceId& id);
bool valid(const SpanId& id);

// `traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`
// [W3C 3.2]: lower-case hex only; all-zero ids and version ff are invalid;
// a version above 00 is parsed by its first four fields (forward
// compatibility, 3.2.4). True and `out` filled (tracestate untouched).
bool parse_traceparent(std::string_view value, TraceContext& out);
// 55 characters, version 00.
std::string format_traceparent(const TraceId& trace, const SpanId& span, bool sampled);

// `b3: {trace}-{span}[-{sampled}[-{parent}]]` or `b3: {sampled}` (sampled
// only: 0, 1 or d). Trace ids of 16 or 32 hex characters (64-bit ids are
// left-padded with zeros). A lone `0` sets sampled=0 without ids and still
// returns true (the caller then starts a new, unsampled trace).
bool parse_b3_single(std::string_view value, TraceContext& out);
// The multi headers' values (empty: absent): x-b3-traceid, x-b3-spanid,
// x-b3-parentspanid, x-b3-sampled ("1"/"0"/"true"/"false"), x-b3-flags ("1": debug).
bool parse_b3_multi(std::string_view trace_id, std::string_view span_id,
                    std::string_view parent_span_id, std::string_view sampled,
                    std::string_view flags, TraceContext& out);
// `{trace}-{span}-{1|0}[-{parent}]`.
std::string format_b3_single(const TraceId& trace, const SpanId& span, bool sampled,
                             const SpanId* parent);

// Lower-case hex of `n` bytes.
void append_hex(std::string& out, const uint8_t* data, size_t n);
inline std::string to_hex(const TraceId& id) {
  std::string s;
  append_hex(s, id.data(), id.size());
  return s;
}
inline std::string to_hex(const SpanId& id) {
  std::string s;
  append_hex(s, id.data(), id.size());
  return s;
}

// The head sampling decision.
struct Sampling {
  double ratio = 0.01;        // of new traces (and of deferred B3 ones)
  bool parent_based = true;   // follow the caller's sampled flag when it has one
  bool sample_errors = true;  // export a request answered with 5xx even when not sampled
};

// OpenTelemetry's TraceIdRatioBased rule: sampled when the trace id's last
// 8 bytes (big-endian) are below ratio * 2^64, so that every sidecar of a
// trace decides alike without talking to each other.
bool sample_ratio(const TraceId& trace, double ratio);
bool decide(const Sampling& s, const TraceContext* parent, const TraceId& trace);

}  // namespace sidecar::tracing
