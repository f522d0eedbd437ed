#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/rbac/filter.h"
#include "filters/registry.h"
#include "net/transport.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

std::shared_ptr<const config::Config> load(const std::string& rbac) {
  register_builtin();
  return config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: rbac
        config:
)" + rbac,
                             "t");
}

struct Request {
  Request(std::string m = "GET", std::string p = "/", std::string ip = "10.0.0.1",
          std::string c = "", std::string s = "", std::string h = "")
      : method(std::move(m)),
        path(std::move(p)),
        peer(std::move(ip)),
        claims(std::move(c)),
        san(std::move(s)),
        header(std::move(h)) {}
  std::string method, path, peer;
  std::string claims;  // jwt_authn.payload
  std::string san;     // TLS peer URI SAN
  std::string header;  // one extra field line
};

// Runs the filter; "allow" or the response detail.
std::string run(const std::shared_ptr<const config::Config>& c, const Request& q,
                testing::TestCallbacks* out = nullptr) {
  testing::TestCallbacks local;
  testing::TestCallbacks& r = out ? *out : local;
  static std::string storage;
  storage = q.method + " " + q.path + " HTTP/1.1\r\nHost: api.example\r\n" +
            (q.header.empty() ? "" : q.header + "\r\n") + "\r\n";
  http::RequestParser parser;
  EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
  r.path_value = q.path;
  r.authority_value = "api.example";
  r.peer = q.peer;
  if (!q.claims.empty()) r.metadata_map["jwt_authn.payload"] = q.claims;
  net::TlsInfo tls;
  if (!q.san.empty()) {
    tls.peer_uri_sans.push_back(q.san);
    tls.peer_cert_sha256 = "ab";
    r.tls_info = &tls;
  }
  auto filter = make_factory(c->listeners[0].filters[0])->create();
  const auto status = filter->on_request_headers(r);
  r.tls_info = nullptr;
  if (status == http::FilterStatus::kContinue) return "allow";
  EXPECT_EQ(r.reply_status.value_or(0), 403);
  return r.detail;
}

TEST(RbacFilter, DestinationPort) {
  auto c = load(R"(          rules:
            action: ALLOW
            policies:
              admin-port:
                principals: [ { source_ip: 10.0.0.0/8 } ]
                permissions: [ { destination_port: 9000 } ]
              public:
                principals: [ { any: true } ]
                permissions: [ { destination_port_range: { start: 8000, end: 8080 } } ]
)");
  const std::string denied = "rbac_access_denied_matched_policy[none]";
  struct Case {
    uint16_t port;
    std::string ip, expected;
  };
  const Case cases[] = {{9000, "10.0.0.1", "allow"},
                        {9000, "192.168.0.1", denied},
                        {8000, "192.168.0.1", "allow"},
                        {8079, "192.168.0.1", "allow"},
                        {8080, "192.168.0.1", denied}};
  for (const Case& k : cases) {
    testing::TestCallbacks r;
    r.port = k.port;
    EXPECT_EQ(run(c, {"GET", "/", k.ip}, &r), k.expected) << k.port << " " << k.ip;
  }
  try {
    load(
        "          rules: { policies: { p: { principals: [ { any: true } ], permissions: [ { "
        "destination_port_range: { start: 10, end: 10 } } ] } } }\n");
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("end must be above start"), std::string::npos) << e.what();
  }
}

TEST(RbacFilter, TableOfCases) {
  auto allow = load(R"(          rules:
            action: ALLOW
            policies:
              admins:
                principals: [ { jwt_claim: { name: groups, exact: admin } } ]
                permissions: [ { any: true } ]
              readers:
                principals:
                  - or_ids: { ids: [ { source_ip: 10.0.0.0/8 }, { authenticated: { principal_name: { prefix: "spiffe://cluster.local/ns/web/" } } } ] }
                permissions:
                  - and_rules: { rules: [ { methods: [ GET, HEAD ] }, { url_path: { path: { prefix: /api/ } } } ] }
              health:
                principals: [ { any: true } ]
                permissions: [ { url_path: { path: { safe_regex: { regex: "/health(z)?" } } } } ]
              host:
                principals: [ { not_id: { source_ip: { address_prefix: 192.168.0.0, prefix_len: 16 } } } ]
                permissions: [ { header: { name: ":authority", exact: admin.example } } ]
)");
  struct Case {
    Request request;
    std::string expected;
  };
  const std::string denied = "rbac_access_denied_matched_policy[none]";
  const Case cases[] = {
      {{"GET", "/api/x"}, "allow"},
      {{"POST", "/api/x"}, denied},
      {{"GET", "/other"}, denied},
      {{"GET", "/api/x?q=1", "192.168.1.1"}, denied},
      {{"GET", "/api/x", "::ffff:10.1.2.3"}, "allow"},
      {{"GET", "/api/x", "2001:db8::1", "", "spiffe://cluster.local/ns/web/sa/app"}, "allow"},
      {{"GET", "/api/x", "2001:db8::1", "", "spiffe://cluster.local/ns/db/sa/app"}, denied},
      {{"DELETE", "/anything", "1.2.3.4", "{\"groups\":[\"dev\",\"admin\"]}"}, "allow"},
      {{"DELETE", "/anything", "1.2.3.4", "{\"groups\":[\"dev\"]}"}, denied},
      {{"GET", "/healthz", "1.2.3.4"}, "allow"},
      {{"GET", "/healthzz", "1.2.3.4"}, denied},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request.method + " " + c.request.path + " from " + c.request.peer);
    EXPECT_EQ(run(allow, c.request), c.expected);
  }
}

TEST(RbacFilter, DenyPolicyNamesItselfAndShadowRulesOnlyCount) {
  auto deny = load(R"(          rules:
            action: DENY
            policies:
              no-bob:
                principals: [ { jwt_claim: { name: sub, exact: bob } } ]
                permissions: [ { any: true } ]
              no-debug:
                principals: [ { any: true } ]
                permissions: [ { header: { name: x-debug, present: true } } ]
          shadow_rules:
            action: ALLOW
            policies:
              only-get:
                principals: [ { any: true } ]
                permissions: [ { methods: [ GET ] } ]
)");
  EXPECT_EQ(run(deny, {"GET", "/", "1.1.1.1", "{\"sub\":\"bob\"}"}),
            "rbac_access_denied_matched_policy[no-bob]");
  EXPECT_EQ(run(deny, {"GET", "/", "1.1.1.1", "{\"sub\":\"alice\"}"}), "allow");
  EXPECT_EQ(run(deny, {"GET", "/", "1.1.1.1", "", "", "X-Debug: 1"}),
            "rbac_access_denied_matched_policy[no-debug]");
  testing::TestCallbacks r;
  EXPECT_EQ(run(deny, {"POST", "/"}, &r), "allow");
  EXPECT_EQ(r.metadata_map["rbac.shadow_engine_result"], "denied");
  testing::TestCallbacks r2;
  EXPECT_EQ(run(deny, {"GET", "/"}, &r2), "allow");
  EXPECT_EQ(r2.metadata_map["rbac.shadow_engine_result"], "allowed");
  EXPECT_EQ(r2.metadata_map["rbac.shadow_effective_policy_id"], "only-get");
}

TEST(RbacFilter, IstioOrderIsTwoFiltersDenyThenAllow) {
  auto c = load(R"(          rules:
            action: DENY
            policies:
              no-bob: { principals: [ { jwt_claim: { name: sub, exact: bob } } ], permissions: [ { any: true } ] }
      - name: rbac
        config:
          rules:
            action: ALLOW
            policies:
              admins: { principals: [ { jwt_claim: { name: groups, exact: admin } } ], permissions: [ { any: true } ] }
)");
  ASSERT_EQ(c->listeners[0].filters.size(), 2u);
  auto chain = [&](const std::string& claims) {
    std::string out;
    for (const auto& f : c->listeners[0].filters) {
      testing::TestCallbacks r;
      static std::string storage;
      storage = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
      http::RequestParser parser;
      EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
      r.metadata_map["jwt_authn.payload"] = claims;
      if (make_factory(f)->create()->on_request_headers(r) != http::FilterStatus::kContinue)
        return r.detail;
    }
    return std::string("allow");
  };
  EXPECT_EQ(chain(R"({"sub":"bob","groups":["admin"]})"),
            "rbac_access_denied_matched_policy[no-bob]");
  EXPECT_EQ(chain(R"({"sub":"ann","groups":["admin"]})"), "allow");
  EXPECT_EQ(chain(R"({"sub":"ann","groups":["dev"]})"), "rbac_access_denied_matched_policy[none]");
}

TEST(RbacFilter, ConfigErrors) {
  auto expect_error = [](const std::string& rbac, const std::string& what) {
    try {
      load(rbac);
      FAIL() << "no error for " << what;
    } catch (const config::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error("          rules: { action: MAYBE }\n", "MAYBE");
  expect_error(
      "          rules: { policies: { p: { principals: [ { who: 1 } ], permissions: [ { any: true "
      "} ] } } }\n",
      "unknown principal 'who'");
  expect_error(
      "          rules: { policies: { p: { principals: [ { source_ip: 10.0.0.300/8 } ], "
      "permissions: [ { any: true } ] } } }\n",
      "is not an IP address");
  expect_error(
      "          rules: { policies: { p: { principals: [ { any: true } ], permissions: [ { "
      "url_path: { path: { safe_regex: { regex: '(' } } } } ] } } }\n",
      "safe_regex.regex");
}

}  // namespace
}  // namespace sidecar::filters
