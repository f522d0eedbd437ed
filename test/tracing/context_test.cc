#include "tracing/context.h"

#include <gtest/gtest.h>

#include "tracing/span.h"

namespace sidecar::tracing {
namespace {

constexpr const char* kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kSpan = "00f067aa0ba902b7";

TEST(Traceparent, ParsesTheSpecificationsExample) {
  TraceContext c;
  ASSERT_TRUE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", c));
  EXPECT_EQ(to_hex(c.trace_id), kTrace);
  EXPECT_EQ(to_hex(c.span_id), kSpan);
  EXPECT_EQ(c.sampled, 1);
  ASSERT_TRUE(parse_traceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ", c));
  EXPECT_EQ(c.sampled, 0);
  // Other flag bits are ignored; only bit 0 is "sampled".
  ASSERT_TRUE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", c));
  EXPECT_EQ(c.sampled, 1);
}

TEST(Traceparent, RejectsWhatTheSpecificationRejects) {
  TraceContext c;
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",           // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero span
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // v00 is exact
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",        // not hex
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",       // after flags
       }) {
    EXPECT_FALSE(parse_traceparent(bad, c)) << bad;
  }
  // A later version is read by its first fields [W3C 3.2.4].
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", c));
}

TEST(Traceparent, FormatsVersion00) {
  TraceContext c;
  ASSERT_TRUE(parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", c));
  EXPECT_EQ(format_traceparent(c.trace_id, c.span_id, true),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(format_traceparent(c.trace_id, c.span_id, false),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
}

TEST(B3, SingleHeader) {
  TraceContext c;
  ASSERT_TRUE(
      parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", c));
  EXPECT_EQ(to_hex(c.trace_id), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(to_hex(c.span_id), "e457b5a2e4d86bd1");
  EXPECT_EQ(to_hex(c.parent_span_id), "05e3ac9a4f6e3b90");
  EXPECT_EQ(c.sampled, 1);
  // 64-bit trace ids are left-padded; no sampling field: deferred.
  ASSERT_TRUE(parse_b3_single("a3ce929d0e0e4736-00f067aa0ba902b7", c));
  EXPECT_EQ(to_hex(c.trace_id), "0000000000000000a3ce929d0e0e4736");
  EXPECT_EQ(c.sampled, -1);
  ASSERT_TRUE(parse_b3_single("A3CE929D0E0E4736-00F067AA0BA902B7-d", c));
  EXPECT_TRUE(c.debug);
  EXPECT_EQ(c.sampled, 1);
  // A decision only.
  ASSERT_TRUE(parse_b3_single("0", c));
  EXPECT_FALSE(valid(c.trace_id));
  EXPECT_EQ(c.sampled, 0);
  for (const char* bad : {"", "2", "x-y", "a3ce929d0e0e4736", "a3ce929d0e0e4736-00f067aa0ba902b7-2",
                          "a3ce929d0e0e473-00f067aa0ba902b7", "a3ce929d0e0e4736-00f067aa0ba902b",
                          "00000000000000000000000000000000-00f067aa0ba902b7",
                          "a3ce929d0e0e4736-00f067aa0ba902b7-1-zz"}) {
    EXPECT_FALSE(parse_b3_single(bad, c)) << bad;
  }
  const SpanId parent = c.span_id;
  ASSERT_TRUE(parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1", c));
  EXPECT_EQ(format_b3_single(c.trace_id, c.span_id, true, nullptr),
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1");
  EXPECT_EQ(format_b3_single(c.trace_id, c.span_id, false, &c.span_id),
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0-e457b5a2e4d86bd1");
  (void)parent;
}

TEST(B3, MultiHeaders) {
  TraceContext c;
  ASSERT_TRUE(parse_b3_multi("a3ce929d0e0e4736", "00f067aa0ba902b7", "", "1", "", c));
  EXPECT_EQ(to_hex(c.trace_id), "0000000000000000a3ce929d0e0e4736");
  EXPECT_EQ(c.sampled, 1);
  ASSERT_TRUE(parse_b3_multi(kTrace, kSpan, "05e3ac9a4f6e3b90", "false", "", c));
  EXPECT_EQ(c.sampled, 0);
  ASSERT_TRUE(parse_b3_multi(kTrace, kSpan, "", "", "1", c));
  EXPECT_TRUE(c.debug);
  ASSERT_TRUE(parse_b3_multi("", "", "", "0", "", c));
  EXPECT_FALSE(valid(c.trace_id));
  EXPECT_FALSE(parse_b3_multi("", "", "", "", "", c));
  EXPECT_FALSE(parse_b3_multi(kTrace, "", "", "1", "", c));
  EXPECT_FALSE(parse_b3_multi(kTrace, kSpan, "", "yes", "", c));
  EXPECT_FALSE(parse_b3_multi(kTrace, kSpan, "nothex", "1", "", c));
}

TEST(Sampling, RatioIsDecidedByTheTraceId) {
  TraceId low{}, high{};
  low[15] = 1;
  for (size_t i = 8; i < 16; ++i) high[i] = 0xff;
  EXPECT_TRUE(sample_ratio(low, 0.01));
  EXPECT_FALSE(sample_ratio(high, 0.99));
  EXPECT_TRUE(sample_ratio(high, 1.0));
  EXPECT_FALSE(sample_ratio(low, 0.0));
  // Half of all ids below 2^63.
  TraceId mid{};
  mid[8] = 0x7f;
  EXPECT_TRUE(sample_ratio(mid, 0.5));
  mid[8] = 0x80;
  EXPECT_FALSE(sample_ratio(mid, 0.5));
}

TEST(Sampling, ParentBased) {
  Sampling s;
  s.ratio = 0;
  TraceId id{};
  id[15] = 1;
  TraceContext parent;
  parent.sampled = 1;
  EXPECT_TRUE(decide(s, &parent, id));
  parent.sampled = 0;
  s.ratio = 1;
  EXPECT_FALSE(decide(s, &parent, id));
  parent.sampled = -1;  // deferred: the ratio decides
  EXPECT_TRUE(decide(s, &parent, id));
  s.parent_based = false;
  s.ratio = 0;
  parent.sampled = 1;
  EXPECT_FALSE(decide(s, &parent, id));
  EXPECT_FALSE(decide(s, nullptr, id));
}

TEST(SpanSink, DropsWhenFullAndHandsOutBatches) {
  SpanSink sink(3, 2);
  for (int i = 0; i < 5; ++i) {
    SpanRecord r;
    r.name = std::to_string(i);
    sink.push(std::move(r));
  }
  EXPECT_EQ(sink.queued(), 3u);
  EXPECT_EQ(sink.dropped(), 2u);
  std::vector<SpanRecord> batch;
  ASSERT_TRUE(sink.take(batch, std::chrono::milliseconds(0)));
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0].name, "0");
  EXPECT_EQ(batch[1].name, "1");
  sink.stop();
  ASSERT_TRUE(sink.take(batch, std::chrono::milliseconds(0)));
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].name, "2");
  EXPECT_FALSE(sink.take(batch, std::chrono::milliseconds(0)));
}

}  // namespace
}  // namespace sidecar::tracing
