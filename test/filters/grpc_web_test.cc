#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/grpc_web/filter.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

std::string joined(const http::Spans& spans) {
  std::string out;
  for (const auto& b : spans) out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}

std::string frame(uint8_t flags, std::string_view payload) {
  std::string f(1, static_cast<char>(flags));
  const uint32_t n = static_cast<uint32_t>(payload.size());
  for (int s = 24; s >= 0; s -= 8) f += static_cast<char>(n >> s);
  return f.append(payload);
}

TEST(GrpcWebBase64, RoundTripsAcrossBatchBoundariesAndPaddedSegments) {
  const std::string data = std::string("\x00\x00\x00\x00\x05hello", 10) + "\xff\x80 and more";
  grpc_web::Base64Encoder enc;
  std::string text;
  // Fed one byte at a time: the encoder carries partial groups.
  for (char c : data) enc.encode(std::string_view(&c, 1), text);
  enc.finish(text);
  grpc_web::Base64Decoder dec;
  std::string back;
  for (size_t i = 0; i < text.size(); i += 3) ASSERT_TRUE(dec.decode(text.substr(i, 3), back));
  EXPECT_TRUE(dec.complete());
  EXPECT_EQ(back, data);
  // Two separately padded segments, as clients send frame by frame.
  back.clear();
  dec.reset();
  ASSERT_TRUE(dec.decode("YQ==YWI=YWJj", back));
  EXPECT_EQ(back, "aababc");
  EXPECT_FALSE(dec.decode("YW*j", back));
  dec.reset();
  ASSERT_TRUE(dec.decode("YW", back));
  EXPECT_FALSE(dec.complete());
}

struct Call {
  testing::TestCallbacks r;
  std::string storage;
  std::unique_ptr<http::HttpFilter> filter;
  http::FilterStatus status;
  Call(const std::string& fields) {
    register_builtin();
    static auto config = config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ], protocol: h2c } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters: [ { name: grpc_web } ]
)",
                                             "t");
    storage = "POST /pkg.Svc/Method HTTP/1.1\r\nHost: api\r\n" + fields + "\r\n";
    http::RequestParser parser;
    EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
    filter = make_factory(config->listeners[0].filters[0])->create();
    status = filter->on_request_headers(r);
  }
};

TEST(GrpcWebFilter, BinaryCallBecomesGrpcAndTrailersTheLastFrame) {
  Call c("Content-Type: application/grpc-web+proto\r\nContent-Length: 10\r\n");
  EXPECT_EQ(c.status, http::FilterStatus::kContinue);
  EXPECT_EQ(c.r.log,
            "-req content-type;+req content-type=application/grpc+proto;-req te;+req "
            "te=trailers;");
  const std::string msg = frame(0, "hello");
  http::Spans body{{msg.data(), msg.size()}};
  c.filter->on_request_data(body, true, c.r);
  EXPECT_EQ(joined(body), msg);  // binary: as it is

  c.r.log.clear();
  http::ResponseHead resp;
  const std::string head = "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n\r\n";
  http::ResponseParser rp;
  ASSERT_EQ(rp.feed(head, resp).status, http::HeadResult::kDone);
  c.filter->on_response_headers(resp, c.r);
  EXPECT_EQ(c.r.log,
            "-resp content-type;+resp content-type=application/grpc-web+proto;-resp "
            "content-length;");
  EXPECT_TRUE(c.r.streamed);
  EXPECT_TRUE(c.filter->on_response_trailers({{"grpc-status", "0"}, {"x-md", "v"}}, c.r));
  http::Spans out{{msg.data(), msg.size()}};
  c.filter->on_response_data(out, true, c.r);
  EXPECT_EQ(joined(out), msg + frame(0x80, "grpc-status:0\r\nx-md:v\r\n"));
}

TEST(GrpcWebFilter, TextCallIsDecodedAndAnsweredInBase64) {
  Call c(
      "Content-Type: application/grpc-web-text\r\nAccept: application/grpc-web-text\r\n"
      "Content-Length: 16\r\n");
  EXPECT_NE(c.r.log.find("-req content-length;"), std::string::npos);
  const std::string msg = frame(0, "hello");  // "AAAAAAVoZWxsbw=="
  std::string text = "AAAAAAVoZWxsbw==";
  http::Spans a{{text.data(), 5}};
  c.filter->on_request_data(a, false, c.r);
  std::string got = joined(a);
  http::Spans b{{text.data() + 5, text.size() - 5}};
  c.filter->on_request_data(b, true, c.r);
  got += joined(b);
  EXPECT_EQ(got, msg);

  http::ResponseHead resp;
  const std::string head = "HTTP/1.1 200 OK\r\ncontent-type: application/grpc+proto\r\n\r\n";
  http::ResponseParser rp;
  ASSERT_EQ(rp.feed(head, resp).status, http::HeadResult::kDone);
  c.r.log.clear();
  c.filter->on_response_headers(resp, c.r);
  EXPECT_NE(c.r.log.find("+resp content-type=application/grpc-web-text+proto;"), std::string::npos);
  c.filter->on_response_trailers({{"grpc-status", "0"}}, c.r);
  http::Spans out{{msg.data(), msg.size()}};
  c.filter->on_response_data(out, true, c.r);
  // The body's base64, then the trailer frame's as a segment of its own.
  EXPECT_EQ(joined(out), "AAAAAAVoZWxsbw==gAAAAA9ncnBjLXN0YXR1czowDQo=");
}

TEST(GrpcWebFilter, OtherRequestsPassUntouched) {
  Call c("Content-Type: application/json\r\nContent-Length: 2\r\n");
  EXPECT_EQ(c.r.log, "");
  http::ResponseHead resp;
  const std::string head = "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\n\r\n";
  http::ResponseParser rp;
  ASSERT_EQ(rp.feed(head, resp).status, http::HeadResult::kDone);
  c.filter->on_response_headers(resp, c.r);
  EXPECT_EQ(c.r.log, "");
  EXPECT_FALSE(c.filter->on_response_trailers({{"grpc-status", "0"}}, c.r));
}

}  // namespace
}  // namespace sidecar::filters
