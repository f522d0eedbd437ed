#include "tracing/context.h"

#include <cmath>

namespace sidecar::tracing {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Lower-case hex into `out` (2 * n characters exactly).
bool parse_hex(std::string_view s, uint8_t* out, size_t n) {
  if (s.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    const int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// B3 accepts upper case too in practice; Zipkin writes lower case.
std::string_view lower(std::string_view s, char* buf, size_t cap) {
  if (s.size() > cap) return {};
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    buf[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return {buf, s.size()};
}

bool parse_b3_trace_id(std::string_view s, TraceId& out) {
  char buf[32];
  s = lower(s, buf, sizeof(buf));
  out = {};
  if (s.size() == 16) return parse_hex(s, out.data() + 8, 8) && valid(out);
  return parse_hex(s, out.data(), 16) && valid(out);
}

bool parse_b3_span_id(std::string_view s, SpanId& out) {
  char buf[16];
  s = lower(s, buf, sizeof(buf));
  return parse_hex(s, out.data(), 8) && valid(out);
}

// The sampling field of the single header: 1, 0 or d (debug).
bool b3_flag(std::string_view f, TraceContext& c) {
  if (f == "1") {
    c.sampled = 1;
  } else if (f == "0") {
    c.sampled = 0;
  } else if (f == "d") {
    c.sampled = 1;
    c.debug = true;
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool valid(const TraceId& id) {
  for (uint8_t b : id) {
    if (b != 0) return true;
  }
  return false;
}

bool valid(const SpanId& id) {
  for (uint8_t b : id) {
    if (b != 0) return true;
  }
  return false;
}

void append_hex(std::string& out, const uint8_t* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
}

bool parse_traceparent(std::string_view v, TraceContext& out) {
  // Optional whitespace around the value is the field's (RFC 9110 5.5), not ours.
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.size() < 55) return false;
  uint8_t version;
  if (!parse_hex(v.substr(0, 2), &version, 1) || version == 0xff) return false;
  if (version == 0 && v.size() != 55) return false;
  if (version != 0 && v.size() > 55 && v[55] != '-') return false;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  TraceId trace;
  SpanId span;
  uint8_t flags;
  if (!parse_hex(v.substr(3, 32), trace.data(), 16) || !valid(trace)) return false;
  if (!parse_hex(v.substr(36, 16), span.data(), 8) || !valid(span)) return false;
  if (!parse_hex(v.substr(53, 2), &flags, 1)) return false;
  out.trace_id = trace;
  out.span_id = span;
  out.parent_span_id = {};
  out.sampled = (flags & 1) != 0 ? 1 : 0;
  out.debug = false;
  return true;
}

std::string format_traceparent(const TraceId& trace, const SpanId& span, bool sampled) {
  std::string s;
  s.reserve(55);
  s += "00-";
  append_hex(s, trace.data(), trace.size());
  s += '-';
  append_hex(s, span.data(), span.size());
  s += sampled ? "-01" : "-00";
  return s;
}

bool parse_b3_single(std::string_view v, TraceContext& out) {
  TraceContext c;
  if (v.size() == 1) {
    // Only a decision: no ids (a new trace that keeps it).
    if (!b3_flag(v, c)) return false;
  } else {
    const size_t d1 = v.find('-');
    if (d1 == std::string_view::npos) return false;
    if (!parse_b3_trace_id(v.substr(0, d1), c.trace_id)) return false;
    std::string_view rest = v.substr(d1 + 1);
    const size_t d2 = rest.find('-');
    if (!parse_b3_span_id(rest.substr(0, d2), c.span_id)) return false;
    if (d2 != std::string_view::npos) {
      rest = rest.substr(d2 + 1);
      const size_t d3 = rest.find('-');
      if (!b3_flag(rest.substr(0, d3), c)) return false;
      if (d3 != std::string_view::npos &&
          !parse_b3_span_id(rest.substr(d3 + 1), c.parent_span_id)) {
        return false;
      }
    }
  }
  c.tracestate = std::move(out.tracestate);
  out = std::move(c);
  return true;
}

bool parse_b3_multi(std::string_view trace_id, std::string_view span_id,
                    std::string_view parent_span_id, std::string_view sampled,
                    std::string_view flags, TraceContext& out) {
  TraceContext c;
  if (sampled == "1" || sampled == "true") {
    c.sampled = 1;
  } else if (sampled == "0" || sampled == "false") {
    c.sampled = 0;
  } else if (!sampled.empty()) {
    return false;
  }
  if (flags == "1") {
    c.debug = true;
    c.sampled = 1;
  }
  if (trace_id.empty() && span_id.empty()) {
    // A decision without ids.
    if (c.sampled < 0) return false;
  } else {
    if (!parse_b3_trace_id(trace_id, c.trace_id) || !parse_b3_span_id(span_id, c.span_id)) {
      return false;
    }
    if (!parent_span_id.empty() && !parse_b3_span_id(parent_span_id, c.parent_span_id)) {
      return false;
    }
  }
  c.tracestate = std::move(out.tracestate);
  out = std::move(c);
  return true;
}

std::string format_b3_single(const TraceId& trace, const SpanId& span, bool sampled,
                             const SpanId* parent) {
  std::string s;
  s.reserve(70);
  append_hex(s, trace.data(), trace.size());
  s += '-';
  append_hex(s, span.data(), span.size());
  s += sampled ? "-1" : "-0";
  if (parent != nullptr && valid(*parent)) {
    s += '-';
    append_hex(s, parent->data(), parent->size());
  }
  return s;
}

bool sample_ratio(const TraceId& trace, double ratio) {
  if (ratio >= 1.0) return true;
  if (ratio <= 0.0) return false;
  uint64_t low = 0;
  for (size_t i = 8; i < 16; ++i) low = low << 8 | trace[i];
  // 2^64 * ratio, computed in long double so that 1 - epsilon stays below 2^64.
  const long double bound = std::ldexp(static_cast<long double>(ratio), 64);
  return static_cast<long double>(low) < bound;
}

bool decide(const Sampling& s, const TraceContext* parent, const TraceId& trace) {
  if (parent != nullptr && s.parent_based && parent->sampled >= 0) return parent->sampled == 1;
  return sample_ratio(trace, s.ratio);
}

}  // namespace sidecar::tracing
