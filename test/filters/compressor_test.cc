#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/compressor/filter.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

using compressor::Encoding;
using Recorder = testing::TestCallbacks;

std::shared_ptr<const config::Config> load(const std::string& filter_config) {
  register_builtin();
  return config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: compressor
)" + filter_config,
                             "t");
}

std::string gunzip(const std::string& in) {
  z_stream z{};
  inflateInit2(&z, 15 + 16);
  std::string out(in.size() * 50 + 1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  return rc == Z_STREAM_END ? out : "<gzip error>";
}

std::string unbrotli(const std::string& in) {
  std::string out(in.size() * 50 + 1024, '\0');
  size_t size = out.size();
  if (BrotliDecoderDecompress(in.size(), reinterpret_cast<const uint8_t*>(in.data()), &size,
                              reinterpret_cast<uint8_t*>(out.data())) !=
      BROTLI_DECODER_RESULT_SUCCESS)
    return "<brotli error>";
  out.resize(size);
  return out;
}

std::string unzstd(const std::string& in) {
  std::string out(in.size() * 50 + 1024, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) return "<zstd error>";
  out.resize(n);
  return out;
}

// A request head with the given fields (views into `storage`).
struct Request {
  std::vector<std::string> storage;
  void add(Recorder& r, std::string name, std::string value) {
    storage.reserve(64);
    storage.push_back(std::move(name));
    storage.push_back(std::move(value));
    r.head.headers.push_back({storage[storage.size() - 2], storage.back()});
  }
};

http::ResponseHead response(std::vector<std::pair<std::string_view, std::string_view>> fields,
                            uint16_t status = 200, std::optional<uint64_t> length = 5000) {
  http::ResponseHead h;
  h.head = "HTTP/1.1 ...";  // an upstream response: head bytes present
  h.status = status;
  for (auto [n, v] : fields) h.headers.push_back({n, v});
  h.body = length ? http::BodyKind::kContentLength : http::BodyKind::kChunked;
  h.has_content_length = length.has_value();
  h.content_length = length.value_or(0);
  return h;
}

TEST(Compressor, NegotiatesByQValueThenConfigOrder) {
  auto c = load("        config: { zstd: {}, brotli: {}, gzip: {} }\n");
  auto config =
      std::static_pointer_cast<const compressor::Config>(c->listeners[0].filters[0].typed);
  auto pick = [&](std::string ae) -> std::string {
    Recorder r;
    Request q;
    q.add(r, "Accept-Encoding", ae);
    auto e = compressor::negotiate(r.head, *config);
    return e ? std::string(compressor::token(*e)) : "none";
  };
  EXPECT_EQ(pick("gzip, br"), "br");  // equal q: the config's order (zstd, brotli, gzip)
  EXPECT_EQ(pick("gzip;q=1, br;q=0.5"), "gzip");
  EXPECT_EQ(pick("gzip;q=0, br;q=0"), "none");
  EXPECT_EQ(pick("identity"), "none");
  EXPECT_EQ(pick("*"), "zstd");
  EXPECT_EQ(pick("*;q=0.1, zstd;q=0"), "br");
  EXPECT_EQ(pick("gzip;q=2, br;q=0.x"), "none");  // malformed q-values are ignored
  EXPECT_EQ(pick("GZIP ; Q=0.5"), "gzip");
}

class Roundtrip : public ::testing::TestWithParam<std::string> {};

TEST_P(Roundtrip, StreamsAndDecodesBack) {
  auto c = load("        config: { gzip: {}, brotli: {}, zstd: {} }\n");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  Recorder r;
  Request q;
  q.add(r, "accept-encoding", GetParam());
  EXPECT_EQ(f->on_request_headers(r), http::FilterStatus::kContinue);
  // A stream without Content-Length (chunked): flushed batch by batch.
  auto head = response({{"content-type", "application/json; charset=utf-8"}, {"etag", "\"v1\""}},
                       200, std::nullopt);
  f->on_response_headers(head, r);
  const std::string token = GetParam() == "br" ? "br" : GetParam();
  EXPECT_EQ(r.log, "+resp vary=Accept-Encoding;-resp content-length;+resp content-encoding=" +
                       token + ";-resp etag;+resp etag=W/\"v1\";");
  EXPECT_TRUE(r.streamed);
  // A body in three batches, the first of two pieces; each batch is
  // decodable on its own so far (flushed).
  std::string body;
  for (int i = 0; i < 200; ++i) body += "{\"id\":" + std::to_string(i) + ",\"name\":\"item\"},";
  std::string encoded;
  const std::string a = body.substr(0, 100), b = body.substr(100, 2000), rest = body.substr(2100);
  http::Spans batch{{a.data(), a.size()}, {b.data(), b.size()}};
  f->on_response_data(batch, false, r);
  for (auto& s : batch) encoded.append(static_cast<const char*>(s.data()), s.size());
  EXPECT_GT(encoded.size(), 20u);  // flushed: more than a gzip header, not held back
  batch = {{rest.data(), rest.size()}};
  f->on_response_data(batch, false, r);
  for (auto& s : batch) encoded.append(static_cast<const char*>(s.data()), s.size());
  batch.clear();
  f->on_response_data(batch, true, r);
  for (auto& s : batch) encoded.append(static_cast<const char*>(s.data()), s.size());
  EXPECT_LT(encoded.size(), body.size() / 3);
  const std::string decoded = GetParam() == "gzip" ? gunzip(encoded)
                              : GetParam() == "br" ? unbrotli(encoded)
                                                   : unzstd(encoded);
  EXPECT_EQ(decoded, body);
  f->on_stream_end();
}

INSTANTIATE_TEST_SUITE_P(Encodings, Roundtrip, ::testing::Values("gzip", "br", "zstd"));

// A body with a Content-Length is one document: no flush per batch (as
// nginx), whole deflate blocks; it still decodes back.
TEST(Compressor, KnownLengthIsNotFlushedPerBatch) {
  auto c = load("        config: { gzip: {} }\n");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  Recorder r;
  Request q;
  q.add(r, "accept-encoding", "gzip");
  f->on_request_headers(r);
  std::string body;
  for (int i = 0; i < 200; ++i) body += "{\"id\":" + std::to_string(i) + ",\"name\":\"item\"},";
  auto head = response({{"content-type", "application/json"}}, 200, body.size());
  f->on_response_headers(head, r);
  std::string encoded;
  const std::string a = body.substr(0, 2000), rest = body.substr(2000);
  http::Spans batch{{a.data(), a.size()}};
  f->on_response_data(batch, false, r);
  for (auto& s : batch) encoded.append(static_cast<const char*>(s.data()), s.size());
  EXPECT_LE(encoded.size(), 10u);  // the gzip header at most: the block is still open
  batch = {{rest.data(), rest.size()}};
  f->on_response_data(batch, true, r);
  for (auto& s : batch) encoded.append(static_cast<const char*>(s.data()), s.size());
  EXPECT_EQ(gunzip(encoded), body);
  f->on_stream_end();
}

// A stream inflated piece by piece: what a client has decoded after each
// flush must be everything sent so far (a byte-aligned sync flush).
class Inflater {
 public:
  Inflater() { inflateInit2(&z_, 15 + 16); }
  ~Inflater() { inflateEnd(&z_); }
  // Feeds `in`; the bytes decoded, or "<gzip error>". `done` is set at the
  // end of the gzip member.
  std::string feed(const std::string& in, bool& done) {
    std::string out(in.size() * 50 + 65536, '\0');
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return "<gzip error>";
    done = rc == Z_STREAM_END;
    out.resize(out.size() - z_.avail_out);
    return out;
  }

 private:
  z_stream z_{};
};

// Each level (1..3 on ISA-L, 4..9 on zlib) and window sizes (9 on zlib): every
// flush is decodable at once, the end is a complete gzip member, and a
// stream reused from the thread's pool starts clean.
TEST(Compressor, GzipEncoderLevelsFlushAndReuse) {
  std::string body;
  for (int i = 0; i < 900; ++i)
    body += "{\"id\":" + std::to_string(i * 7919 % 1000) + ",\"name\":\"item " + std::to_string(i) +
            "\"},";
  for (int level = 1; level <= 9; ++level) {
    for (int window_bits : {9, 11, 12, 15}) {
      for (int round = 0; round < 2; ++round) {  // the second from the pool
        SCOPED_TRACE(::testing::Message()
                     << "level " << level << " window_bits " << window_bits << " round " << round);
        compressor::EncoderSettings s;
        s.gzip_level = level;
        s.gzip_window_bits = window_bits;
        auto e = compressor::make_encoder(Encoding::kGzip, s);
        ASSERT_NE(e, nullptr);
        Inflater inflater;
        std::string decoded;
        bool done = false;
        size_t at = 0;
        for (size_t piece : {1u, 700u, 5000u, 0u, 9000u}) {
          std::string out;
          const std::string_view in = std::string_view(body).substr(at, piece);
          ASSERT_TRUE(e->encode(in, compressor::Flush::kProcess, out));
          ASSERT_TRUE(e->encode({}, compressor::Flush::kFlush, out));
          at += in.size();
          decoded += inflater.feed(out, done);
          ASSERT_EQ(decoded, body.substr(0, at));  // all of it, at once
          ASSERT_FALSE(done);
        }
        std::string out;
        ASSERT_TRUE(e->encode(std::string_view(body).substr(at), compressor::Flush::kFinish, out));
        decoded += inflater.feed(out, done);
        EXPECT_TRUE(done);
        EXPECT_EQ(decoded, body);
        // One-shot, as a response with a Content-Length: as small as zlib
        // at that level or within 3% (docs/filters.md "gzip").
        std::string whole;
        auto one = compressor::make_encoder(Encoding::kGzip, s);
        ASSERT_TRUE(one->encode(body, compressor::Flush::kFinish, whole));
        EXPECT_EQ(gunzip(whole), body);
        z_stream z{};
        ASSERT_EQ(deflateInit2(&z, level, Z_DEFLATED, window_bits + 16, 8, Z_DEFAULT_STRATEGY),
                  Z_OK);
        std::string zlib_out(deflateBound(&z, body.size()), '\0');
        z.next_in = reinterpret_cast<Bytef*>(body.data());
        z.avail_in = static_cast<uInt>(body.size());
        z.next_out = reinterpret_cast<Bytef*>(zlib_out.data());
        z.avail_out = static_cast<uInt>(zlib_out.size());
        ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
        EXPECT_LE(whole.size(), z.total_out * 103 / 100) << "zlib: " << z.total_out;
        deflateEnd(&z);
      }
    }
  }
}

// The ISA-L level (1) with a Content-Length: still one open block per
// batch, decoded back whole.
TEST(Compressor, IsalLevelKnownLength) {
  auto c = load("        config: { gzip: { level: 1 } }\n");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  Recorder r;
  Request q;
  q.add(r, "accept-encoding", "gzip");
  f->on_request_headers(r);
  std::string body;
  for (int i = 0; i < 2000; ++i) body += "{\"id\":" + std::to_string(i) + ",\"name\":\"item\"},";
  auto head = response({{"content-type", "application/json"}}, 200, body.size());
  f->on_response_headers(head, r);
  std::string encoded;
  const std::string a = body.substr(0, 2000), rest = body.substr(2000);
  http::Spans batch{{a.data(), a.size()}};
  f->on_response_data(batch, false, r);
  for (auto& s : batch) encoded.append(static_cast<const char*>(s.data()), s.size());
  batch = {{rest.data(), rest.size()}};
  f->on_response_data(batch, true, r);
  for (auto& s : batch) encoded.append(static_cast<const char*>(s.data()), s.size());
  EXPECT_LT(encoded.size(), body.size() / 5);
  EXPECT_EQ(gunzip(encoded), body);
  f->on_stream_end();
}

TEST(Compressor, LeavesAloneWhatMustNotBeCompressed) {
  auto c = load("        config: { gzip: {}, min_content_length: 1KiB }\n");
  auto f = make_factory(c->listeners[0].filters[0])->create();
  struct Case {
    std::string name;
    std::string method = "GET";
    std::vector<std::pair<std::string_view, std::string_view>> fields;
    uint16_t status = 200;
    std::optional<uint64_t> length = 5000;
    bool range = false;
    bool vary = true;  // Vary: Accept-Encoding expected anyway
  };
  const std::vector<Case> cases = {
      {"small", "GET", {{"content-type", "text/html"}}, 200, 100, false, false},
      {"type", "GET", {{"content-type", "image/png"}}, 200, 5000, false, false},
      {"no type", "GET", {}, 200, 5000, false, false},
      {"encoded",
       "GET",
       {{"content-type", "text/html"}, {"content-encoding", "br"}},
       200,
       5000,
       false,
       false},
      {"no-transform",
       "GET",
       {{"content-type", "text/html"}, {"cache-control", "public, no-transform"}},
       200,
       5000,
       false,
       false},
      {"204", "GET", {{"content-type", "text/html"}}, 204, std::nullopt, false, false},
      {"304", "GET", {{"content-type", "text/html"}}, 304, std::nullopt, false, false},
      {"206", "GET", {{"content-type", "text/html"}}, 206, 5000, false, false},
      {"HEAD", "HEAD", {{"content-type", "text/html"}}, 200, 5000, false, false},
      {"range", "GET", {{"content-type", "text/html"}}, 200, 5000, true, false},
  };
  for (const Case& k : cases) {
    Recorder r;
    Request q;
    q.add(r, "accept-encoding", "gzip");
    if (k.range) q.add(r, "range", "bytes=0-10");
    r.head.method = k.method == "HEAD" ? http::Method::kHead : http::Method::kGet;
    f->on_request_headers(r);
    f->on_response_headers(response(k.fields, k.status, k.length), r);
    EXPECT_EQ(r.log, "") << k.name;
    EXPECT_FALSE(r.streamed) << k.name;
    f->on_stream_end();
  }
  // A local reply (no head bytes: its body skips the body hooks).
  Recorder r;
  Request q;
  q.add(r, "accept-encoding", "gzip");
  f->on_request_headers(r);
  auto local = response({{"content-type", "text/plain"}});
  local.head = {};
  f->on_response_headers(local, r);
  EXPECT_EQ(r.log, "");
  f->on_stream_end();
  // Not accepted: not compressed, but Vary merged into the existing one.
  Recorder r2;
  f->on_request_headers(r2);
  f->on_response_headers(response({{"content-type", "text/html"}, {"vary", "Origin"}}), r2);
  EXPECT_EQ(r2.log, "-resp vary;+resp vary=Origin, Accept-Encoding;");
  f->on_stream_end();
}

TEST(Compressor, ConfigErrors) {
  try {
    load("        config: { gzip: { level: 12 }, lz4: {}, content_type: [ html ] }\n");
    FAIL();
  } catch (const config::ConfigError& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("compressor.gzip.level"), std::string::npos) << all;
    EXPECT_NE(all.find("unknown key 'lz4'"), std::string::npos) << all;
    EXPECT_NE(all.find("'html' is not a media type"), std::string::npos) << all;
  }
}

// memory_level is zlib's: at an ISA-L level it would change nothing.
TEST(Compressor, MemoryLevelOnlyAtZlibLevels) {
  EXPECT_NO_THROW(load("        config: { gzip: { level: 6, memory_level: 9 } }\n"));
  EXPECT_NO_THROW(load("        config: { gzip: { level: 2, window_bits: 12 } }\n"));
  // A window below 2^11 is zlib's at every level.
  EXPECT_NO_THROW(
      load("        config: { gzip: { level: 1, window_bits: 9, memory_level: 2 } }\n"));
  try {
    load("        config: { gzip: { level: 1, memory_level: 9 } }\n");
    FAIL();
  } catch (const config::ConfigError& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("compressor.gzip.memory_level: has no effect at level 1"), std::string::npos)
        << all;
  }
}

}  // namespace
}  // namespace sidecar::filters
