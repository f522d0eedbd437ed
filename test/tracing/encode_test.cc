#include "tracing/encode.h"

#include <zlib.h>

#include <gtest/gtest.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace sidecar::tracing {
namespace {

SpanRecord example() {
  SpanRecord s;
  TraceContext c;
  parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", c);
  s.trace_id = c.trace_id;
  s.span_id = c.span_id;
  s.name = "GET main";
  s.kind = SpanKind::kClient;
  s.start_unix_ns = 1'700'000'000'000'000'000;
  s.end_unix_ns = s.start_unix_ns + 2'500'000;
  s.error = true;
  s.add("http.request.method", "GET");
  s.add("http.response.status_code", int64_t{503});
  s.add("error.type", "503");
  s.remote_ip = "::1";
  s.remote_port = 8080;
  return s;
}

TEST(Encode, OtlpRoundTripsThroughTheGeneratedMessages) {
  const std::string wire = encode_otlp({example()}, "svc");
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(wire));
  ASSERT_EQ(req.resource_spans_size(), 1);
  const auto& rs = req.resource_spans(0);
  EXPECT_EQ(rs.resource().attributes(0).key(), "service.name");
  EXPECT_EQ(rs.resource().attributes(0).value().string_value(), "svc");
  const auto& s = rs.scope_spans(0).spans(0);
  EXPECT_EQ(s.trace_id().size(), 16u);
  EXPECT_EQ(s.span_id().size(), 8u);
  EXPECT_TRUE(s.parent_span_id().empty());
  EXPECT_EQ(s.kind(), opentelemetry::proto::trace::v1::Span::SPAN_KIND_CLIENT);
  EXPECT_EQ(s.end_time_unix_nano() - s.start_time_unix_nano(), 2'500'000u);
  EXPECT_EQ(s.attributes(1).value().int_value(), 503);
  EXPECT_EQ(s.status().code(), opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
}

TEST(Encode, ZipkinV2Json) {
  const std::string json = encode_zipkin({example()}, "svc");
  EXPECT_EQ(json,
            "[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"id\":\"00f067aa0ba902b7\","
            "\"kind\":\"CLIENT\",\"name\":\"get main\",\"timestamp\":1700000000000000,"
            "\"duration\":2500,\"localEndpoint\":{\"serviceName\":\"svc\"},"
            "\"remoteEndpoint\":{\"ipv6\":\"::1\",\"port\":8080},\"tags\":{"
            "\"http.request.method\":\"GET\",\"http.response.status_code\":\"503\","
            "\"error.type\":\"503\",\"error\":\"503\"}}]");
}

TEST(Encode, GzipInflatesBack) {
  const std::string text(10000, 'x');
  const std::string z = gzip(text);
  ASSERT_GE(z.size(), 18u);
  EXPECT_EQ(static_cast<uint8_t>(z[0]), 0x1f);
  EXPECT_EQ(static_cast<uint8_t>(z[1]), 0x8b);
  std::string out(text.size(), '\0');
  z_stream s{};
  ASSERT_EQ(inflateInit2(&s, 15 + 16), Z_OK);
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(z.data()));
  s.avail_in = static_cast<uInt>(z.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&s, Z_FINISH), Z_STREAM_END);
  inflateEnd(&s);
  EXPECT_EQ(out, text);
}

}  // namespace
}  // namespace sidecar::tracing
