#include "proxy/router.h"

#include <gtest/gtest.h>

#include "config/loader.h"

namespace sidecar::proxy {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = config::load_string(R"(
clusters:
  - { name: api, endpoints: [ "127.0.0.1:1" ] }
  - { name: web, endpoints: [ "127.0.0.1:2" ] }
  - { name: canary, endpoints: [ "127.0.0.1:3" ] }
  - { name: other, endpoints: [ "127.0.0.1:4" ] }
listeners:
  - name: l
    address: 127.0.0.1:0
    routes:
      - match: { prefix: /api, headers: [ { name: x-canary, exact: "1" } ] }
        cluster: canary
      - match: { prefix: /api, host: "*.example.com" }
        cluster: api
      - match: { path: /exact, host: "web.*" }
        cluster: web
      - match: { prefix: /, headers: [ { name: x-id, regex: "[0-9]+" } ] }
        cluster: api
      - match: { prefix: / }
        cluster: other
)",
                                  "t");
    table_ = std::make_unique<RouteTable>(config_->listeners[0], *config_);
  }

  // The cluster the request routes to, or "".
  std::string route(const std::string& host, const std::string& path,
                    const std::string& extra_headers = "") {
    std::string raw =
        "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra_headers + "\r\n";
    http::RequestParser p;
    http::RequestHead head;
    EXPECT_EQ(p.feed(raw, head).status, http::HeadResult::kDone);
    const CompiledRoute* r = table_->match(head.host(), head.target, head);
    return r == nullptr ? "" : r->config->cluster;
  }

  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<RouteTable> table_;
};

TEST_F(RouterTest, FirstMatchWins) {
  EXPECT_EQ(route("a.example.com", "/api/users", "X-Canary: 1\r\n"), "canary");
  EXPECT_EQ(route("a.example.com", "/api/users"), "api");
  EXPECT_EQ(route("A.Example.COM:8080", "/api"), "api");
  EXPECT_EQ(route("example.com", "/api"), "other");  // "*.example.com" needs a subdomain
  EXPECT_EQ(route("web.local", "/exact"), "web");
  EXPECT_EQ(route("web.local", "/exact?x=1"), "web");  // exact path ignores the query
  EXPECT_EQ(route("web.local", "/exact/more"), "other");
  EXPECT_EQ(route("h", "/x", "X-Id: 123\r\n"), "api");
  EXPECT_EQ(route("h", "/x", "X-Id: 12a\r\n"), "other");  // regex is a full match
}

TEST(StripPort, HandlesIpv6) {
  EXPECT_EQ(strip_port("a:80"), "a");
  EXPECT_EQ(strip_port("a"), "a");
  EXPECT_EQ(strip_port("[::1]:80"), "[::1]");
  EXPECT_EQ(strip_port("[::1]"), "[::1]");
}

}  // namespace
}  // namespace sidecar::proxy
