#include "proxy/route_balancing.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "upstream/load_balancer.h"

namespace sidecar::proxy {
namespace {

using Kind = config::HashPolicy::Kind;

// A parsed request head over `raw` (kept alive by the caller).
struct Request {
  explicit Request(const std::string& extra_headers, const std::string& target = "/")
      : raw("GET " + target + " HTTP/1.1\r\nHost: h\r\n" + extra_headers + "\r\n") {
    http::RequestParser p;
    EXPECT_EQ(p.feed(raw, head).status, http::HeadResult::kDone);
  }
  std::string raw;
  http::RequestHead head;
};

config::HashPolicy policy(Kind kind, std::string name, bool terminal = false) {
  config::HashPolicy p;
  p.kind = kind;
  p.name = std::move(name);
  p.terminal = terminal;
  return p;
}

TEST(FindCookie, ParsesPairs) {
  Request r("Cookie: a=1; sticky=abc ; b=\"q\"\r\nCookie: c=3\r\n");
  EXPECT_EQ(find_cookie(r.head, "sticky").value(), "abc");
  EXPECT_EQ(find_cookie(r.head, "b").value(), "q");
  EXPECT_EQ(find_cookie(r.head, "c").value(), "3");
  EXPECT_FALSE(find_cookie(r.head, "stick").has_value());
  EXPECT_FALSE(find_cookie(r.head, "A").has_value());  // names are case-sensitive
}

TEST(FindQueryParameter, ParsesPairs) {
  EXPECT_EQ(find_query_parameter("/p?a=1&user=bob&x", "user").value(), "bob");
  EXPECT_EQ(find_query_parameter("/p?a=1&x", "x").value(), "");
  EXPECT_FALSE(find_query_parameter("/p?a=1", "user").has_value());
  EXPECT_FALSE(find_query_parameter("/p", "user").has_value());
  EXPECT_FALSE(find_query_parameter("/p?usera=1", "user").has_value());
}

TEST(ComputeHash, NoPolicyOrNoValueGivesNoKey) {
  Request r("");
  HashInput in{&r.head, "/", "10.0.0.1", 7};
  EXPECT_FALSE(compute_hash({}, in).hash.has_value());
  EXPECT_FALSE(compute_hash({policy(Kind::kHeader, "x-user")}, in).hash.has_value());
}

TEST(ComputeHash, SameValueSameKey) {
  Request a("X-User: alice\r\n"), b("x-user: alice\r\n"), c("X-User: bob\r\n");
  const std::vector<config::HashPolicy> p{policy(Kind::kHeader, "x-user")};
  const auto ha = compute_hash(p, {&a.head, "/", "", 0}).hash;
  EXPECT_EQ(ha, compute_hash(p, {&b.head, "/", "", 1}).hash);
  EXPECT_NE(ha, compute_hash(p, {&c.head, "/", "", 0}).hash);
}

TEST(ComputeHash, TerminalStopsTheList) {
  Request r("X-User: alice\r\n");
  const std::vector<config::HashPolicy> terminal{policy(Kind::kHeader, "x-user", true),
                                                 policy(Kind::kSourceIp, "")};
  // The source address does not matter after a terminal entry yielded.
  EXPECT_EQ(compute_hash(terminal, {&r.head, "/", "10.0.0.1", 0}).hash,
            compute_hash(terminal, {&r.head, "/", "10.0.0.2", 0}).hash);
  const std::vector<config::HashPolicy> both{policy(Kind::kHeader, "x-user"),
                                             policy(Kind::kSourceIp, "")};
  EXPECT_NE(compute_hash(both, {&r.head, "/", "10.0.0.1", 0}).hash,
            compute_hash(both, {&r.head, "/", "10.0.0.2", 0}).hash);
  // A terminal entry without a value does not stop the list.
  Request none("");
  EXPECT_EQ(compute_hash(terminal, {&none.head, "/", "10.0.0.1", 0}).hash,
            upstream::hash_key("10.0.0.1"));
}

TEST(ComputeHash, QueryParameter) {
  Request r("");
  const std::vector<config::HashPolicy> p{policy(Kind::kQueryParameter, "u")};
  EXPECT_EQ(compute_hash(p, {&r.head, "/x?u=7&v=1", "", 0}).hash, upstream::hash_key("7"));
  EXPECT_FALSE(compute_hash(p, {&r.head, "/x?v=1", "", 0}).hash.has_value());
}

TEST(ComputeHash, CookieWithTtlIsMadeUpAndSet) {
  config::HashPolicy c = policy(Kind::kCookie, "aff");
  c.ttl = std::chrono::hours(1);
  c.path = "/";
  Request none("");
  const HashResult made = compute_hash({c}, {&none.head, "/", "", 0xabc});
  EXPECT_EQ(made.set_cookie, "aff=0000000000000abc; Max-Age=3600; Path=/; HttpOnly");
  ASSERT_TRUE(made.hash.has_value());
  // The client sends it back: the same key, nothing set.
  Request back("Cookie: aff=0000000000000abc\r\n");
  const HashResult again = compute_hash({c}, {&back.head, "/", "", 0x999});
  EXPECT_EQ(again.hash, made.hash);
  EXPECT_EQ(again.set_cookie, "");
  // Without ttl an absent cookie yields nothing.
  c.ttl = std::chrono::milliseconds(0);
  EXPECT_FALSE(compute_hash({c}, {&none.head, "/", "", 1}).hash.has_value());
}

TEST(WeightedClusters, SplitsByWeightAndSticksByKey) {
  WeightedClusters w;
  w.clusters = {0, 1};
  w.cumulative = {90, 100};
  std::map<int, int> n;
  for (uint64_t i = 0; i < 10000; ++i) ++n[w.choose(std::nullopt, i * 0x9e3779b97f4a7c15ULL)];
  EXPECT_NEAR(n[1], 1000, 150);
  const uint64_t key = upstream::hash_key("user-1");
  const int first = w.choose(key, 1);
  for (uint64_t r = 0; r < 100; ++r) EXPECT_EQ(w.choose(key, r), first);
  std::map<int, int> by_key;
  for (int u = 0; u < 10000; ++u)
    ++by_key[w.choose(upstream::hash_key("user-" + std::to_string(u)), 0)];
  EXPECT_NEAR(by_key[1], 1000, 150);
}

}  // namespace
}  // namespace sidecar::proxy
