// libFuzzer target for the trace context parsers (src/tracing/context.h):
// `traceparent`, `b3` and the `x-b3-*` headers. Checks the properties the
// proxy relies on: a parsed context has valid ids (or none, for a B3
// sampling-only value), formatting what was parsed parses back to the same
// ids, and the sampling decision is total.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tracing/context.h"

using namespace sidecar::tracing;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void round_trip(const TraceContext& c) {
  if (!valid(c.trace_id)) return;
  check(valid(c.span_id));
  TraceContext again;
  check(parse_traceparent(format_traceparent(c.trace_id, c.span_id, c.sampled == 1), again));
  check(again.trace_id == c.trace_id && again.span_id == c.span_id);
  check(again.sampled == (c.sampled == 1 ? 1 : 0));
  TraceContext b3;
  const SpanId* parent = valid(c.parent_span_id) ? &c.parent_span_id : nullptr;
  check(parse_b3_single(format_b3_single(c.trace_id, c.span_id, c.sampled == 1, parent), b3));
  check(b3.trace_id == c.trace_id && b3.span_id == c.span_id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  TraceContext c;
  if (parse_traceparent(text, c)) {
    check(valid(c.trace_id) && valid(c.span_id) && (c.sampled == 0 || c.sampled == 1));
    round_trip(c);
  }
  TraceContext s;
  if (parse_b3_single(text, s)) {
    check(valid(s.trace_id) == valid(s.span_id));
    check(valid(s.trace_id) || s.sampled >= 0);
    round_trip(s);
  }
  // The multi headers: the input split at newlines into the five values.
  std::string_view parts[5];
  std::string_view rest = text;
  for (auto& p : parts) {
    const size_t nl = rest.find('\n');
    p = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  TraceContext m;
  if (parse_b3_multi(parts[0], parts[1], parts[2], parts[3], parts[4], m)) {
    check(valid(m.trace_id) == valid(m.span_id));
    round_trip(m);
  }
  Sampling sampling;
  sampling.ratio = size > 0 ? data[0] / 255.0 : 0.5;
  (void)decide(sampling, &c, c.trace_id);
  return 0;
}
