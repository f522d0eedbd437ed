#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/compressor/decoder.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

using compressor::DecodeResult;
using compressor::Encoding;

std::string encode(Encoding e, const std::string& in) {
  auto enc = compressor::make_encoder(e, {});
  std::string out;
  EXPECT_TRUE(enc->encode(in, compressor::Flush::kFinish, out));
  return out;
}

std::string text() {
  std::string s;
  for (int i = 0; i < 5000; ++i) s += "{\"id\":" + std::to_string(i) + ",\"name\":\"item\"},";
  return s;
}

class Decoders : public ::testing::TestWithParam<Encoding> {};

TEST_P(Decoders, RoundTripInAnySplit) {
  const std::string plain = text();
  const std::string packed = encode(GetParam(), plain);
  for (size_t step : {size_t{1}, size_t{7}, size_t{4096}, packed.size()}) {
    auto d = compressor::make_decoder(GetParam());
    std::string out;
    DecodeResult r = DecodeResult::kOk;
    for (size_t at = 0; at < packed.size(); at += step) {
      r = d->decode(std::string_view(packed).substr(at, step), SIZE_MAX / 2, out);
      ASSERT_NE(r, DecodeResult::kInvalid) << step;
    }
    EXPECT_EQ(r, DecodeResult::kEnd);
    EXPECT_TRUE(d->finished());
    EXPECT_EQ(out, plain) << step;
  }
}

TEST_P(Decoders, BoundedAndStrict) {
  // 32 MiB of zeros: a few KiB encoded; the budget stops it early.
  const std::string bomb = encode(GetParam(), std::string(32 << 20, '\0'));
  ASSERT_LT(bomb.size(), 64u << 10);
  auto d = compressor::make_decoder(GetParam());
  std::string out;
  EXPECT_EQ(d->decode(bomb, 1 << 20, out), DecodeResult::kTooLarge);
  EXPECT_LE(out.size(), (1u << 20) + (16u << 10) + 1);
  // Garbage, and a stream that stops early.
  d = compressor::make_decoder(GetParam());
  out.clear();
  EXPECT_EQ(d->decode(std::string(64, 'x'), 1 << 20, out), DecodeResult::kInvalid);
  const std::string packed = encode(GetParam(), text());
  d = compressor::make_decoder(GetParam());
  EXPECT_EQ(d->decode(packed.substr(0, packed.size() - 8), SIZE_MAX / 2, out), DecodeResult::kOk);
  EXPECT_FALSE(d->finished());
}

INSTANTIATE_TEST_SUITE_P(All, Decoders,
                         ::testing::Values(Encoding::kGzip, Encoding::kBrotli, Encoding::kZstd));

TEST(Decoders, ConcatenatedGzipMembers) {
  const std::string packed = encode(Encoding::kGzip, "abc") + encode(Encoding::kGzip, "def");
  auto d = compressor::make_decoder(Encoding::kGzip);
  std::string out;
  EXPECT_EQ(d->decode(packed, 1 << 20, out), DecodeResult::kEnd);
  EXPECT_EQ(out, "abcdef");
  EXPECT_EQ(compressor::encoding_of("X-GZIP"), Encoding::kGzip);
  EXPECT_FALSE(compressor::encoding_of("deflate"));
}

std::shared_ptr<const config::Config> load(const std::string& filter_config) {
  register_builtin();
  return config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: decompressor
)" + filter_config,
                             "t");
}

struct Exchange {
  testing::TestCallbacks r;
  std::unique_ptr<http::HttpFilter> f;
  std::string storage;
  Exchange(const std::shared_ptr<const config::Config>& c, const std::string& fields) {
    storage = "POST /up HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n";
    http::RequestParser parser;
    EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
    f = make_factory(c->listeners[0].filters[0])->create();
  }
  // Feeds `in` in one batch; what the filter passed on.
  std::string feed(const std::string& in, bool end) {
    http::Spans data{{in.data(), in.size()}};
    f->on_request_data(data, end, r);
    std::string out;
    for (const auto& s : data) out.append(static_cast<const char*>(s.data()), s.size());
    return out;
  }
};

TEST(DecompressorFilter, RequestBodyDecodedAndFieldsAdjusted) {
  const std::string plain = text(), packed = encode(Encoding::kBrotli, plain);
  Exchange run(load("        config: { max_decompressed_bytes: 1MiB }\n"),
               "Content-Encoding: deflate, br\r\nContent-Length: " + std::to_string(packed.size()) +
                   "\r\nAccept-Encoding: gzip\r\n");
  EXPECT_EQ(run.f->on_request_headers(run.r), http::FilterStatus::kContinue);
  EXPECT_TRUE(run.r.request_streamed);
  EXPECT_EQ(run.r.log,
            "-req content-length;-req content-encoding;+req content-encoding=deflate;"
            "-req accept-encoding;+req accept-encoding=gzip, br, zstd;");
  const size_t half = packed.size() / 2;
  std::string out = run.feed(packed.substr(0, half), false);
  out += run.feed(packed.substr(half), true);
  EXPECT_EQ(out, plain);
  EXPECT_FALSE(run.r.reply_status);
}

TEST(DecompressorFilter, BombsAndGarbageAreAnswered) {
  const auto config =
      load("        config: { max_decompressed_bytes: 1MiB, max_inflate_ratio: 10 }\n");
  {
    Exchange run(config, "Content-Encoding: gzip\r\nContent-Length: 10\r\n");
    run.f->on_request_headers(run.r);
    run.feed(encode(Encoding::kGzip, std::string(8 << 20, 'a')), true);
    EXPECT_EQ(run.r.reply_status.value_or(0), 413);
    EXPECT_EQ(run.r.detail, "decompressor_too_large");
    EXPECT_EQ(run.feed("more", true), "");  // the rest is dropped
  }
  {
    Exchange run(config, "Content-Encoding: zstd\r\nContent-Length: 10\r\n");
    run.f->on_request_headers(run.r);
    run.feed("not zstd at all", true);
    EXPECT_EQ(run.r.reply_status.value_or(0), 400);
  }
  {
    // Not ours, or no-transform: left alone.
    Exchange run(config, "Content-Encoding: compress\r\nContent-Length: 10\r\n");
    run.f->on_request_headers(run.r);
    EXPECT_FALSE(run.r.request_streamed);
    EXPECT_EQ(run.feed("0123456789", true), "0123456789");
    Exchange keep(
        config, "Content-Encoding: gzip\r\nCache-Control: no-transform\r\nContent-Length: 10\r\n");
    keep.f->on_request_headers(keep.r);
    EXPECT_FALSE(keep.r.request_streamed);
  }
}

TEST(DecompressorFilter, ConfigErrors) {
  for (const char* bad :
       {"        config: { deflate: {} }\n", "        config: { max_inflate_ratio: 0 }\n",
        "        config: { request_direction_config: { enabled: true } }\n",
        "        config: { response_direction_config: { common_config: { "
        "enabled: maybe } } }\n"}) {
    EXPECT_THROW(load(bad), config::ConfigError) << bad;
  }
  EXPECT_NO_THROW(
      load("        config: { gzip: {}, request_direction_config: { common_config: { "
           "enabled: false }, advertise_accept_encoding: false } }\n"));
}

}  // namespace
}  // namespace sidecar::filters
