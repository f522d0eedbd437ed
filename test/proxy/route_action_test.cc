#include "proxy/route_action.h"

#include <gtest/gtest.h>

#include "config/loader.h"

namespace sidecar::proxy {
namespace {

std::shared_ptr<const config::Config> load_routes(const std::string& routes) {
  return config::load_string(
      "clusters:\n  - { name: app, endpoints: [ \"127.0.0.1:1\" ] }\n"
      "listeners:\n  - name: l\n    address: 127.0.0.1:0\n    routes:\n" +
          routes,
      "t.yaml");
}

std::vector<std::string> errors_of(const std::string& routes) {
  try {
    load_routes(routes);
  } catch (const config::ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no error for:\n" << routes;
  return {};
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += e + "\n";
  return s;
}

// The path sent upstream for `path` on the first route, or "-" without a rewrite.
std::string rewritten(const std::string& route, const std::string& path) {
  auto c = load_routes(route);
  std::string out;
  return rewrite_path(c->listeners[0].routes[0], path, out) ? out : "-";
}

TEST(RouteAction, PrefixRewrite) {
  const std::string r =
      "      - { match: { prefix: /api/ }, cluster: app, prefix_rewrite: /v2/ }\n";
  EXPECT_EQ(rewritten(r, "/api/users?id=1"), "/v2/users?id=1");
  EXPECT_EQ(rewritten(r, "/api/"), "/v2/");
  // Envoy's meaning, kept: the prefix is replaced as text.
  const std::string r2 = "      - { match: { prefix: /api }, cluster: app, prefix_rewrite: / }\n";
  EXPECT_EQ(rewritten(r2, "/api/x"), "//x");
  EXPECT_EQ(rewritten(r2, "/api"), "/");
  // A path a filter changed away from the prefix is left alone.
  EXPECT_EQ(rewritten(r2, "/other"), "-");
  // To nothing: still origin-form.
  const std::string r3 =
      "      - { match: { prefix: /strip }, cluster: app, prefix_rewrite: \"\" }\n";
  EXPECT_EQ(rewritten(r3, "/strip/a"), "-");  // "" is no rewrite (Envoy's unset)
}

TEST(RouteAction, PrefixRewriteOfExactPath) {
  const std::string r =
      "      - { match: { path: /old }, cluster: app, prefix_rewrite: /new/place }\n";
  EXPECT_EQ(rewritten(r, "/old?a=b"), "/new/place?a=b");
  EXPECT_EQ(rewritten(r, "/old"), "/new/place");
}

TEST(RouteAction, RegexRewrite) {
  const std::string r =
      "      - match: { prefix: / }\n        cluster: app\n"
      "        regex_rewrite: { pattern: { regex: \"^/service/([^/]+)(/.*)$\" }, "
      "substitution: \"\\\\2/instance/\\\\1\" }\n";
  EXPECT_EQ(rewritten(r, "/service/foo/v1/api?x=/service/a/b"),
            "/v1/api/instance/foo?x=/service/a/b");
  EXPECT_EQ(rewritten(r, "/other"), "/other");
  // Every match is replaced (Envoy's GlobalReplace).
  const std::string r2 =
      "      - { match: { prefix: / }, cluster: app, regex_rewrite: { pattern: \"o\", "
      "substitution: \"0\" } }\n";
  EXPECT_EQ(rewritten(r2, "/foo/boo?o=o"), "/f00/b00?o=o");
  // A match that eats the leading slash still yields origin-form.
  const std::string r3 =
      "      - { match: { prefix: / }, cluster: app, regex_rewrite: { pattern: \"^/x\", "
      "substitution: \"\" } }\n";
  EXPECT_EQ(rewritten(r3, "/x"), "/");
}

std::string location(const std::string& redirect, bool tls, const std::string& authority,
                     const std::string& path, const std::string& match = "{ prefix: / }") {
  auto c = load_routes("      - { match: " + match + ", redirect: " + redirect + " }\n");
  const config::Route& r = c->listeners[0].routes[0];
  http::LocalResponse a = route_answer(r, tls, authority, path);
  EXPECT_EQ(a.headers.size(), 1u);
  EXPECT_TRUE(a.body.empty());
  return std::to_string(a.status) + " " + (a.headers.empty() ? "" : a.headers[0].second);
}

TEST(RouteAction, Redirects) {
  EXPECT_EQ(location("{ path_redirect: /new }", false, "a.example:8000", "/old?x=1"),
            "301 http://a.example:8000/new?x=1");
  EXPECT_EQ(location("{ path_redirect: /new, strip_query: true, response_code: 302 }", false,
                     "a.example", "/old?x=1"),
            "302 http://a.example/new");
  EXPECT_EQ(location("{ path_redirect: \"/new?y=2\" }", false, "a", "/old?x=1"),
            "301 http://a/new?y=2");
  EXPECT_EQ(location("{ https_redirect: true }", false, "a.example:80", "/p?q"),
            "301 https://a.example/p?q");
  // The old port belonged to plain HTTP.
  EXPECT_EQ(location("{ https_redirect: true, response_code: PERMANENT_REDIRECT }", false,
                     "a.example:8000", "/"),
            "308 https://a.example/");
  EXPECT_EQ(location("{ https_redirect: true, port_redirect: 8443 }", false, "a.example:8000", "/"),
            "301 https://a.example:8443/");
  EXPECT_EQ(location("{ scheme_redirect: http, port_redirect: 80 }", true, "a.example", "/"),
            "301 http://a.example/");
  EXPECT_EQ(
      location("{ host_redirect: b.example, response_code: 307 }", false, "a.example:8000", "/x"),
      "307 http://b.example/x");
  EXPECT_EQ(location("{ host_redirect: \"b.example:9000\" }", true, "a.example", "/x"),
            "301 https://b.example:9000/x");
  EXPECT_EQ(location("{ port_redirect: 9000 }", false, "[::1]:8000", "/x"),
            "301 http://[::1]:9000/x");
  EXPECT_EQ(location("{ prefix_rewrite: /new/, response_code: 303 }", false, "h", "/old/a?b",
                     "{ prefix: /old/ }"),
            "303 http://h/new/a?b");
  EXPECT_EQ(location("{ prefix_rewrite: /new/, strip_query: true }", false, "h", "/old/a?b",
                     "{ prefix: /old/ }"),
            "301 http://h/new/a");
  EXPECT_EQ(
      location("{ regex_rewrite: { pattern: \"^/u/(\\\\d+)$\", substitution: \"/users/\\\\1\" } }",
               false, "h", "/u/42"),
      "301 http://h/users/42");
}

TEST(RouteAction, DirectResponse) {
  auto c = load_routes(
      "      - { match: { path: /healthz }, direct_response: { status: 200, body: \"ok\\n\" } }\n"
      "      - { match: { path: /gone }, direct_response: { status: 410 } }\n"
      "      - { match: { path: /page }, direct_response: { status: 503, "
      "body: { inline_string: \"<p>down</p>\" }, content_type: text/html } }\n");
  http::LocalResponse a = route_answer(c->listeners[0].routes[0], false, "h", "/healthz");
  EXPECT_EQ(a.status, 200);
  // The configured body is shared with the config, not copied.
  ASSERT_NE(a.shared_body, nullptr);
  EXPECT_EQ(a.shared_body.get(), &c->listeners[0].routes[0].direct_response->body);
  EXPECT_EQ(*a.shared_body, "ok\n");
  ASSERT_EQ(a.headers.size(), 1u);
  EXPECT_EQ(a.headers[0].second, "text/plain");
  a = route_answer(c->listeners[0].routes[1], false, "h", "/gone");
  EXPECT_EQ(a.status, 410);
  EXPECT_TRUE(a.headers.empty());
  EXPECT_EQ(a.shared_body, nullptr);
  a = route_answer(c->listeners[0].routes[2], false, "h", "/page");
  EXPECT_EQ(a.headers[0].second, "text/html");
  ASSERT_NE(a.shared_body, nullptr);
  EXPECT_EQ(*a.shared_body, "<p>down</p>");
  EXPECT_TRUE(c->listeners[0].routes[0].cluster.empty());
}

TEST(RouteAction, ConfigErrors) {
  auto e = joined(errors_of("      - { match: { prefix: / } }\n"));
  EXPECT_NE(e.find("t.yaml:7:9: listeners[0].routes[0] needs a cluster (or weighted_clusters, a "
                   "redirect or direct_response)"),
            std::string::npos)
      << e;
  e = joined(errors_of(
      "      - { match: { prefix: / }, cluster: app, redirect: { path_redirect: /x } }\n"));
  EXPECT_NE(e.find("takes one of cluster, redirect, direct_response"), std::string::npos) << e;
  e = joined(errors_of("      - { match: { prefix: / }, redirect: { response_code: 300 } }\n"));
  EXPECT_NE(e.find("'300' is not 301, 302, 303, 307 or 308"), std::string::npos) << e;
  e = joined(
      errors_of("      - { match: { prefix: / }, cluster: app, regex_rewrite: { pattern: \"(\", "
                "substitution: x } }\n"));
  EXPECT_NE(e.find("regex_rewrite.pattern: missing )"), std::string::npos) << e;
  e = joined(
      errors_of("      - { match: { prefix: / }, cluster: app, regex_rewrite: { pattern: \"a\", "
                "substitution: \"\\\\3\" } }\n"));
  EXPECT_NE(e.find("regex_rewrite.substitution:"), std::string::npos) << e;
  e = joined(errors_of("      - { cluster: app, prefix_rewrite: /x }\n"));
  EXPECT_NE(e.find("prefix_rewrite needs a match.prefix or match.path"), std::string::npos) << e;
  e =
      joined(errors_of("      - { match: { prefix: / }, cluster: app, host_rewrite: a, "
                       "auto_host_rewrite: true }\n"));
  EXPECT_NE(e.find("host_rewrite or auto_host_rewrite, not both"), std::string::npos) << e;
  e = joined(errors_of(
      "      - { match: { prefix: / }, direct_response: { status: 200 }, prefix_rewrite: /x }\n"));
  EXPECT_NE(e.find("prefix_rewrite is for routes with a cluster"), std::string::npos) << e;
  e = joined(
      errors_of("      - { match: { prefix: / }, direct_response: { status: 200, body: { filename: "
                "/nonexistent/x } } }\n"));
  EXPECT_NE(e.find("body.filename: cannot read '/nonexistent/x'"), std::string::npos) << e;
  e = joined(errors_of("      - { match: { prefix: / }, direct_response: { status: 700 } }\n"));
  EXPECT_NE(e.find("direct_response.status"), std::string::npos) << e;
  e = joined(errors_of(
      "      - { match: { prefix: / }, redirect: { path_redirect: /a, prefix_rewrite: /b } }\n"));
  EXPECT_NE(e.find("one of path_redirect, prefix_rewrite, regex_rewrite"), std::string::npos) << e;
}

}  // namespace
}  // namespace sidecar::proxy
