#include "filters/cache/filter.h"

#include <gtest/gtest.h>

#include "test_callbacks.h"

namespace sidecar::filters::cache {
namespace {

TEST(CacheControl, Directives) {
  CacheControl cc;
  parse_cache_control("public, max-age=60, s-maxage=\"120\", stale-if-error=5", cc);
  EXPECT_TRUE(cc.public_);
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 120);
  EXPECT_EQ(cc.stale_if_error, 5);
  EXPECT_FALSE(cc.no_store);
  parse_cache_control("No-Store, private=\"set-cookie, x\", no-cache", cc);  // a second line adds
  EXPECT_TRUE(cc.no_store);
  EXPECT_TRUE(cc.private_);
  EXPECT_TRUE(cc.no_cache);
  EXPECT_EQ(cc.max_age, 60);

  CacheControl bad;
  parse_cache_control("max-age=abc, min-fresh=x, max-stale", bad);
  EXPECT_EQ(bad.max_age, 0);  // invalid: stale, the safe reading
  EXPECT_EQ(bad.min_fresh, -1);
  EXPECT_TRUE(bad.max_stale_any);
  CacheControl big;
  parse_cache_control("max-age=99999999999999999999", big);
  EXPECT_EQ(big.max_age, 2147483648);
  CacheControl quoted;
  parse_cache_control("foo=\"a, max-age=5\", must-revalidate", quoted);
  EXPECT_EQ(quoted.max_age, -1);  // inside a quoted string
  EXPECT_TRUE(quoted.must_revalidate);
}

TEST(CacheControl, HttpDates) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_FALSE(parse_http_date("0"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"));
  char out[30];
  format_http_date(784111777, out);
  EXPECT_STREQ(out, "Sun, 06 Nov 1994 08:49:37 GMT");
}

http::ResponseHead response(std::vector<http::HeaderField> fields, uint16_t status = 200) {
  http::ResponseHead r;
  r.status = status;
  r.headers = std::move(fields);
  return r;
}

TEST(Cache, FreshnessLifetime) {
  CacheControl cc;
  parse_cache_control("max-age=60, s-maxage=10", cc);
  EXPECT_EQ(freshness_lifetime(cc, response({}), 0), 10);  // shared: s-maxage first
  CacheControl none;
  auto r = response({{"expires", "Sun, 06 Nov 1994 08:50:37 GMT", 0, 0}});
  EXPECT_EQ(freshness_lifetime(none, r, 784111777), 60);
  auto r0 = response({{"expires", "0", 0, 0}});
  EXPECT_EQ(freshness_lifetime(none, r0, 784111777), 0);
  EXPECT_EQ(freshness_lifetime(none, response({}), 784111777), -1);
}

TEST(Cache, Storable) {
  CacheControl req;
  CacheControl cc;
  parse_cache_control("max-age=60", cc);
  EXPECT_STREQ(not_storable(response({}), cc, false, req), "");
  EXPECT_STREQ(not_storable(response({}, 500), cc, false, req), "status");
  EXPECT_STREQ(not_storable(response({}, 404), cc, false, req), "");
  EXPECT_STREQ(not_storable(response({}), cc, true, req), "authorization");
  CacheControl pub;
  parse_cache_control("public, max-age=60", pub);
  EXPECT_STREQ(not_storable(response({}), pub, true, req), "");
  CacheControl priv;
  parse_cache_control("private, max-age=60", priv);
  EXPECT_STREQ(not_storable(response({}), priv, false, req), "private");
  EXPECT_STREQ(not_storable(response({{"set-cookie", "a=b", 0, 0}}), cc, false, req), "set-cookie");
  CacheControl nostore;
  parse_cache_control("no-store", nostore);
  EXPECT_STREQ(not_storable(response({}), cc, false, nostore), "request no-store");
}

std::shared_ptr<Entry> entry(std::string body, Fields vary = {}) {
  auto e = std::make_shared<Entry>();
  e->body = std::move(body);
  e->vary = std::move(vary);
  e->freshness_lifetime = 60;
  return e;
}

http::RequestHead request(std::vector<http::HeaderField> fields) {
  http::RequestHead r;
  r.headers = std::move(fields);
  return r;
}

TEST(Store, VaryVariants) {
  Store s(1 << 20);
  const std::string key = std::string("l\0h\0/p", 6);
  s.insert(key, entry("gzip", {{"accept-encoding", "gzip"}}));
  s.insert(key, entry("plain", {{"accept-encoding", ""}}));
  auto gz = s.lookup(key, request({{"Accept-Encoding", " gzip ", 0, 0}}));
  ASSERT_TRUE(gz);
  EXPECT_EQ(gz->body, "gzip");
  auto plain = s.lookup(key, request({}));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->body, "plain");
  EXPECT_FALSE(s.lookup(key, request({{"accept-encoding", "br", 0, 0}})));
  EXPECT_TRUE(s.has_key(key));
  // The same variant again replaces it.
  s.insert(key, entry("gzip2", {{"accept-encoding", "gzip"}}));
  EXPECT_EQ(s.lookup(key, request({{"accept-encoding", "gzip", 0, 0}}))->body, "gzip2");
  EXPECT_EQ(s.entries(), 1u);
  s.invalidate(key);
  EXPECT_FALSE(s.has_key(key));
  EXPECT_EQ(s.bytes(), 0u);
}

// A store key: listener "l", authority "h", then the path.
std::string key_of(const std::string& path) { return std::string("l\0h\0", 4) + path; }

TEST(Store, LruBoundsBytes) {
  Store s(Store::kStripes * 10000);  // 10,000 bytes a stripe
  for (int i = 0; i < 200; ++i) {
    s.insert(key_of(std::string("/").append(std::to_string(i))), entry(std::string(1000, 'x')));
  }
  EXPECT_LE(s.bytes(), Store::kStripes * 10000);
  EXPECT_GT(s.entries(), 0u);
  // The last one is there; an object larger than a stripe is never stored.
  EXPECT_TRUE(s.has_key(key_of("/199")));
  s.insert(key_of("/big"), entry(std::string(20000, 'x')));
  EXPECT_FALSE(s.has_key(key_of("/big")));
}

TEST(Store, PurgeByPathPrefix) {
  Store s(1 << 20);
  s.insert(std::string("l\0h\0/a/1", 8), entry("1"));
  s.insert(std::string("l\0h\0/a/2", 8), entry("2"));
  s.insert(std::string("l\0h\0/b/1", 8), entry("3"));
  EXPECT_EQ(s.purge("/a/"), 2u);
  EXPECT_EQ(s.entries(), 1u);
  EXPECT_EQ(s.purge(""), 1u);
  EXPECT_EQ(s.entries(), 0u);
}

TEST(Store, Coalescing) {
  Store s(1 << 20);
  int woken = 0;
  EXPECT_TRUE(s.begin_fill("k", [&] { ++woken; }));
  EXPECT_FALSE(s.begin_fill("k", [&] { ++woken; }));
  EXPECT_FALSE(s.begin_fill("k", [&] { ++woken; }));
  EXPECT_TRUE(s.begin_fill("other", [] {}));
  s.end_fill("k");
  EXPECT_EQ(woken, 2);
  EXPECT_TRUE(s.begin_fill("k", [] {}));  // a new fill after the end
}

TEST(Store, BackgroundFill) {
  Store s(1 << 20);
  EXPECT_TRUE(s.begin_background_fill("k"));
  EXPECT_FALSE(s.begin_background_fill("k"));  // one at a time
  int woken = 0;
  EXPECT_FALSE(s.begin_fill("k", [&] { ++woken; }));  // a miss waits for it
  s.end_fill("k");
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(s.begin_background_fill("k"));
}

// stale-while-revalidate through the filter: the stale entry answers at
// once, one conditional request goes to the route's cluster whatever the
// number of requests meanwhile, and its 304 makes the entry fresh again.
TEST(Cache, StaleWhileRevalidate) {
  auto config = std::make_shared<Config>();
  auto factory = std::make_shared<Factory>(config);
  const std::string key = std::string("swr\0example.com\0/swr", 20);
  auto e = std::make_shared<Entry>();
  e->body = "old";
  e->headers = {{"etag", "\"v1\""}, {"cache-control", "max-age=1, stale-while-revalidate=60"}};
  e->freshness_lifetime = 1;
  e->stale_while_revalidate = 60;
  e->response_time = now_seconds() - 10;  // 9 s stale
  factory->store->insert(key, e);
  const uint64_t served = factory->served_while_revalidating.get();

  testing::TestCallbacks cb;
  cb.listener = "swr";
  cb.path_value = "/swr";
  cb.head.method = http::Method::kGet;
  cb.head.method_name = "GET";
  cb.upstream.method = "GET";
  cb.upstream.path = "/v2/swr";
  cb.upstream.headers = {{"if-none-match", "\"client\""}, {"accept", "*/*"}};
  for (int i = 0; i < 3; ++i) {
    auto f = factory->create();
    EXPECT_EQ(f->on_request_headers(cb), http::FilterStatus::kStopIteration);
    ASSERT_TRUE(cb.response);
    ASSERT_TRUE(cb.response->shared_body);
    EXPECT_EQ(*cb.response->shared_body, "old");
    bool detail = false;
    for (const auto& [n, v] : cb.response->headers) {
      if (n == "cache-status") detail = v.find("detail=stale-while-revalidate") != v.npos;
    }
    EXPECT_TRUE(detail);
    cb.response.reset();
    f->on_stream_end();
  }
  EXPECT_EQ(factory->served_while_revalidating.get() - served, 3u);
  ASSERT_EQ(cb.client.pending.size(), 1u);
  const auto& call = cb.client.pending[0];
  EXPECT_EQ(call.cluster, "app");
  EXPECT_EQ(call.request.path, "/v2/swr");
  // The cache's validator replaces the client's own.
  int inm = 0;
  for (const auto& [n, v] : call.request.headers) {
    if (n == "if-none-match") {
      ++inm;
      EXPECT_EQ(v, "\"v1\"");
    }
  }
  EXPECT_EQ(inm, 1);
  http::ClientResponse r;
  r.status = 304;
  r.headers = {{"cache-control", "max-age=60"}, {"etag", "\"v1\""}};
  cb.client.pending[0].done(std::move(r));
  auto f = factory->create();
  EXPECT_EQ(f->on_request_headers(cb), http::FilterStatus::kStopIteration);
  ASSERT_TRUE(cb.response);
  ASSERT_TRUE(cb.response->shared_body);
  EXPECT_EQ(*cb.response->shared_body, "old");
  for (const auto& [n, v] : cb.response->headers) {
    if (n == "cache-status") {
      EXPECT_TRUE(v.starts_with("sidecar; hit; ttl=")) << v;
    }
  }
  EXPECT_EQ(cb.client.pending.size(), 1u);
  f->on_stream_end();
}

}  // namespace
}  // namespace sidecar::filters::cache
