#include "config/loader.h"

#include <gtest/gtest.h>

#include "config/config_errors.h"

namespace sidecar::config {
namespace {

using testing::errors_of;
using testing::has_error;

TEST(Loader, EmbeddedDefaults) {
  auto c = load_string(default_yaml(), "<embedded default>");
  EXPECT_EQ(c->admin.address.to_string(), "127.0.0.1:9901");
  EXPECT_EQ(c->workers, 0u);
  EXPECT_EQ(c->app.port, 8080);
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].name, "inbound");
  EXPECT_EQ(c->listeners[0].address.to_string(), "0.0.0.0:8000");
  EXPECT_EQ(c->listeners[0].max_request_headers_size, 60u * 1024);
  EXPECT_EQ(c->listeners[0].max_request_headers_count, 100u);
  ASSERT_EQ(c->listeners[0].routes.size(), 1u);
  EXPECT_EQ(c->listeners[0].routes[0].match.prefix, "/");
  EXPECT_EQ(c->listeners[0].routes[0].cluster, "app");
  EXPECT_EQ(c->listeners[0].routes[0].timeout, std::chrono::seconds(15));
  ASSERT_EQ(c->clusters.size(), 1u);
  EXPECT_EQ(c->clusters[0].endpoints[0].to_string(), "127.0.0.1:8080");
  EXPECT_EQ(c->clusters[0].connect_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c->drain.timeout, std::chrono::seconds(5));
}

TEST(Loader, FullConfig) {
  auto c = load_string(R"(
admin: { address: "[::1]:0" }
workers: 3
app: { port: 9000, stop_timeout: 2s }
drain: { timeout: 1500ms }
clusters:
  - name: a
    endpoints: [ "127.0.0.1:1", "localhost:2" ]
    connect_timeout: 250ms
    max_requests_per_connection: 10
listeners:
  - name: in
    address: 127.0.0.1:0
    max_request_headers_size: 8KiB
    max_request_headers_count: 20
    request_headers_timeout: 2s
    idle_timeout: 1m
    routes:
      - name: api
        match:
          prefix: /api
          host: "*.example.com"
          headers:
            - { name: x-env, exact: prod }
            - { name: x-debug, present: false }
            - { name: x-id, regex: "[0-9]+" }
        cluster: a
        timeout: 0
      - match: { path: /exact }
        cluster: a
)",
                       "t");
  EXPECT_EQ(c->workers, 3u);
  EXPECT_EQ(c->admin.address.to_string(), "[::1]:0");
  EXPECT_EQ(c->app.stop_timeout, std::chrono::seconds(2));
  EXPECT_EQ(c->drain.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c->clusters[0].endpoints[1].host, "127.0.0.1");
  EXPECT_EQ(c->clusters[0].connect_timeout, std::chrono::milliseconds(250));
  const Listener& l = c->listeners[0];
  EXPECT_EQ(l.max_request_headers_size, 8192u);
  EXPECT_EQ(l.idle_timeout, std::chrono::minutes(1));
  EXPECT_EQ(l.routes[0].name, "api");
  EXPECT_EQ(l.routes[0].timeout.count(), 0);
  EXPECT_EQ(l.routes[0].match.headers.size(), 3u);
  EXPECT_TRUE(l.routes[0].match.headers[1].invert);
  EXPECT_EQ(l.routes[1].name, "in/1");
}

TEST(Loader, TcpListener) {
  auto c = load_string(R"(
clusters:
  - { name: db, endpoints: [ "127.0.0.1:5432" ] }
listeners:
  - { name: pg, address: 127.0.0.1:0, protocol: tcp, cluster: db, idle_timeout: 30m }
  - name: web
    address: 127.0.0.1:0
    protocol: h2c
    routes: [ { match: { prefix: / }, cluster: db } ]
  - name: web2
    address: 127.0.0.1:0
    routes: [ { match: { prefix: / }, cluster: db } ]
)",
                       "t");
  const Listener& pg = c->listeners[0];
  EXPECT_EQ(pg.protocol, ListenerProtocol::kTcp);
  EXPECT_EQ(pg.cluster, "db");
  EXPECT_TRUE(pg.routes.empty());
  EXPECT_EQ(pg.idle_timeout, std::chrono::minutes(30));
  EXPECT_EQ(c->listeners[1].protocol, ListenerProtocol::kH2c);
  EXPECT_EQ(c->listeners[2].protocol, ListenerProtocol::kAuto);
}

TEST(Loader, ClusterProtocolAuto) {
  // auto offers h2 and http/1.1 by ALPN unless the cluster names its own.
  auto c = load_string(R"(
clusters:
  - { name: a, endpoints: [ "127.0.0.1:443" ], protocol: auto, tls: { sni: a.example } }
  - { name: b, endpoints: [ "127.0.0.1:443" ], protocol: auto, tls: { alpn: [ h2 ] } }
  - { name: c, endpoints: [ "127.0.0.1:80" ], protocol: auto }
  - { name: d, endpoints: [ "127.0.0.1:443" ], protocol: h2, tls: {} }
)",
                       "t");
  EXPECT_EQ(c->clusters[0].protocol, UpstreamProtocol::kAuto);
  EXPECT_EQ(c->clusters[0].tls.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(c->clusters[1].tls.alpn, (std::vector<std::string>{"h2"}));
  EXPECT_EQ(c->clusters[2].protocol, UpstreamProtocol::kAuto);  // plaintext: HTTP/1.1
  EXPECT_FALSE(c->clusters[2].tls.enabled);
  EXPECT_EQ(c->clusters[3].tls.alpn, (std::vector<std::string>{"h2"}));
}

TEST(Loader, TcpListenerErrors) {
  auto e = errors_of(R"(
clusters:
  - { name: db, endpoints: [ "127.0.0.1:5432" ] }
listeners:
  - { name: a, address: 127.0.0.1:0, protocol: tcp }
  - { name: b, address: 127.0.0.1:0, protocol: tcp, cluster: nope }
  - name: c
    address: 127.0.0.1:0
    protocol: tcp
    cluster: db
    routes: [ { match: { prefix: / }, cluster: db } ]
    stream_idle_timeout: 1s
  - name: d
    address: 127.0.0.1:0
    cluster: db
    routes: [ { match: { prefix: / }, cluster: db } ]
  - { name: e, address: 127.0.0.1:0, protocol: udp, cluster: db }
)");
  EXPECT_TRUE(has_error(e, "test.yaml:5:5: listeners[0] needs a cluster (protocol: tcp)"));
  EXPECT_TRUE(has_error(e, "test.yaml:6:62: listeners[1].cluster: no cluster named 'nope'"));
  EXPECT_TRUE(has_error(e, "test.yaml:11:13: listeners[2].routes is for HTTP listeners"));
  EXPECT_TRUE(has_error(e, "listeners[2].stream_idle_timeout is for HTTP listeners"));
  EXPECT_TRUE(has_error(e, "test.yaml:15:14: listeners[3].cluster is for protocol: tcp"));
  EXPECT_TRUE(has_error(e, "listeners[4].protocol"));
  EXPECT_FALSE(has_error(e, "listeners[0] needs routes"));
}

TEST(Loader, ErrorsCarryFileLineAndColumn) {
  auto e = errors_of("listeners:\n  - name: in\n    adress: 1.2.3.4:80\n");
  EXPECT_TRUE(has_error(e, "test.yaml:3:5: unknown key 'adress' in listeners[0]")) << e[0];
  EXPECT_TRUE(has_error(e, "listeners[0] needs an address"));
  EXPECT_TRUE(has_error(e, "listeners[0] needs routes"));
}

TEST(Loader, ReportsEveryProblem) {
  auto e = errors_of(R"(workers: many
admin: { address: "nope" }
clusters:
  - name: a
    endpoints: [ "127.0.0.1:0" ]
    connect_timeout: 5
listeners:
  - name: in
    address: 127.0.0.1:99999
    max_request_headers_size: 12XB
    routes:
      - match: { prefix: / }
        cluster: missing
)");
  EXPECT_TRUE(has_error(e, "test.yaml:1:10: workers must be a non-negative integer"));
  EXPECT_TRUE(has_error(e, "test.yaml:2:19: admin.address: invalid address 'nope'"));
  EXPECT_TRUE(has_error(e, "test.yaml:5:18: clusters[0].endpoints[0] needs a port"));
  EXPECT_TRUE(has_error(e, "test.yaml:6:22: clusters[0].connect_timeout: invalid duration '5'"));
  EXPECT_TRUE(has_error(e, "test.yaml:9:14: listeners[0].address: invalid port"));
  EXPECT_TRUE(has_error(e, "test.yaml:10:31: listeners[0].max_request_headers_size: invalid size"));
  EXPECT_TRUE(has_error(e, "test.yaml:13:18: listeners[0].routes[0].cluster: no cluster named"));
}

TEST(Loader, SyntaxErrorsAndWrongTypes) {
  auto e = errors_of("listeners: [\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("test.yaml:", 0), 0u);
  e = errors_of("listeners: { name: x }\n");
  EXPECT_TRUE(has_error(e, "test.yaml:1:12: listeners must be a list"));
  e = errors_of("admin: 5\n");
  EXPECT_TRUE(has_error(e, "admin must be a mapping"));
  e = errors_of("drain: { timeout: 1s }\ndrain: { timeout: 2s }\n");
  EXPECT_TRUE(has_error(e, "'drain' is given twice"));
}

TEST(Loader, DuplicateNamesAndAddresses) {
  auto e = errors_of(R"(
clusters:
  - { name: a, endpoints: [ "127.0.0.1:1" ] }
  - { name: a, endpoints: [ "127.0.0.1:2" ] }
listeners:
  - { name: l, address: "127.0.0.1:5000", routes: [ { cluster: a } ] }
  - { name: l, address: "127.0.0.1:5000", routes: [ { cluster: a } ] }
)");
  EXPECT_TRUE(has_error(e, "cluster 'a' is defined twice"));
  EXPECT_TRUE(has_error(e, "listener 'l' is defined twice"));
  EXPECT_TRUE(has_error(e, "127.0.0.1:5000 is already used by listener 'l'"));
}

TEST(Loader, BadRegex) {
  auto e = errors_of(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { match: { headers: [ { name: x, regex: "(" } ] }, cluster: a } ]
)");
  EXPECT_TRUE(has_error(e, "regex: missing )")) << (e.empty() ? "" : e[0]);
}

TEST(Loader, MissingFile) {
  try {
    load_file("/nonexistent/sidecar.yaml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.messages()[0].rfind("/nonexistent/sidecar.yaml: cannot open", 0), 0u);
  }
}

TEST(Loader, AccessLogAndLifecycleSections) {
  auto c = load_string(R"(
app: { port: 9000, ready: { http_path: /healthz, period: 200ms }, restart: on-failure,
       backoff: { initial: 100ms, max: 2s } }
drain: { delay: 3s }
watch: true
access_log:
  path: /tmp/x.log
  json_format: { code: "%RESPONSE_CODE%", ua: "%REQ(USER-AGENT):10%", ct: "%RESP(CONTENT-TYPE)%" }
  status: [ "5xx", 404, "400-403" ]
  sample: 0.25
metrics:
  processes: [ { name: db, cgroup: /sys/fs/cgroup/db } ]
)",
                       "t");
  EXPECT_EQ(c->app.restart, RestartPolicy::kOnFailure);
  EXPECT_EQ(c->app.ready.http_path, "/healthz");
  EXPECT_TRUE(c->app.ready.configured);
  EXPECT_EQ(c->drain.delay, std::chrono::seconds(3));
  EXPECT_TRUE(c->watch);
  ASSERT_EQ(c->access_log.fields.size(), 3u);
  EXPECT_EQ(c->access_log.fields[1].tokens[0].max_length, 10u);
  EXPECT_EQ(c->access_log.request_headers, std::vector<std::string>{"user-agent"});
  EXPECT_EQ(c->access_log.response_headers, std::vector<std::string>{"content-type"});
  ASSERT_EQ(c->access_log.status.size(), 3u);
  EXPECT_EQ(c->access_log.status[0], (std::pair<uint16_t, uint16_t>{500, 599}));
  EXPECT_EQ(c->access_log.status[2], (std::pair<uint16_t, uint16_t>{400, 403}));
  EXPECT_DOUBLE_EQ(c->access_log.sample, 0.25);
}

TEST(Loader, AccessLogErrors) {
  auto e = errors_of(R"(
access_log: { text_format: "%NOPE%", status: [ 700 ] }
)");
  EXPECT_TRUE(has_error(e, "access_log.text_format: unknown operator %NOPE%"));
  EXPECT_TRUE(has_error(e, "access_log.status: '700' is not a status"));
}

TEST(Loader, ExpandsEnvironmentVariablesInValues) {
  ::setenv("SIDECAR_TEST_PORT", "9123", 1);
  ::setenv("SIDECAR_TEST_EMPTY", "", 1);
  ::unsetenv("SIDECAR_TEST_UNSET");
  auto c = load_string(R"(
app: { port: "${SIDECAR_TEST_PORT}" }
listeners:
  - name: "in-${SIDECAR_TEST_UNSET:-dflt}-${SIDECAR_TEST_EMPTY:-e}"
    address: "127.0.0.1:${SIDECAR_TEST_PORT}"
    routes: [ { match: { prefix: "/$${literal}" }, cluster: app } ]
clusters: [ { name: app, endpoints: [ "127.0.0.1:1" ] } ]
)",
                       "t");
  EXPECT_EQ(c->app.port, 9123);
  EXPECT_EQ(c->listeners[0].name, "in-dflt-e");
  EXPECT_EQ(c->listeners[0].address.port, 9123);
  EXPECT_EQ(c->listeners[0].routes[0].match.prefix, "/${literal}");
}

TEST(Loader, UnsetVariableIsAnErrorAtItsPosition) {
  ::unsetenv("SIDECAR_TEST_UNSET");
  auto e = errors_of("app:\n  port: ${SIDECAR_TEST_UNSET}\n");
  ASSERT_FALSE(e.empty());
  EXPECT_TRUE(has_error(e, "test.yaml:2:9: environment variable SIDECAR_TEST_UNSET is not set"))
      << e[0];
  EXPECT_TRUE(has_error(errors_of("app: { port: \"${1X}\" }\n"), "is not a variable name"));
  EXPECT_TRUE(has_error(errors_of("app: { port: \"${OPEN\" }\n"), "unclosed ${"));
}

TEST(Loader, UnknownTopLevelKeyListsTheKnownOnes) {
  auto e = errors_of("nope: 1\n");
  EXPECT_TRUE(
      has_error(e, "test.yaml:1:1: unknown key 'nope' at the top level (expected one of: "));
  EXPECT_TRUE(has_error(e, "admin"));
}

TEST(Durations, Parse) {
  EXPECT_EQ(parse_duration("250ms"), Duration(250));
  EXPECT_EQ(parse_duration("10s"), Duration(10'000));
  EXPECT_EQ(parse_duration("1.5s"), Duration(1'500));
  EXPECT_EQ(parse_duration("5m"), Duration(300'000));
  EXPECT_EQ(parse_duration("1h"), Duration(3'600'000));
  EXPECT_EQ(parse_duration("0"), Duration(0));
  EXPECT_FALSE(parse_duration("10"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("10sec"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("0.5ms"));
  EXPECT_FALSE(parse_duration(""));
}

TEST(Sizes, Parse) {
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("1MiB"), 1048576u);
  EXPECT_EQ(parse_size("2GiB"), 2147483648u);
  EXPECT_EQ(parse_size("10KB"), 10000u);
  EXPECT_EQ(parse_size("7B"), 7u);
  EXPECT_FALSE(parse_size("1kib"));
  EXPECT_FALSE(parse_size("KiB"));
  EXPECT_FALSE(parse_size("1.5MiB"));
}

TEST(Addresses, Parse) {
  std::string why;
  EXPECT_EQ(parse_address("127.0.0.1:80", why)->to_string(), "127.0.0.1:80");
  EXPECT_EQ(parse_address("[::1]:80", why)->host, "::1");
  EXPECT_EQ(parse_address(":8000", why)->to_string(), "0.0.0.0:8000");
  EXPECT_EQ(parse_address("localhost:80", why)->host, "127.0.0.1");
  EXPECT_FALSE(parse_address("127.0.0.1", why));
  EXPECT_FALSE(parse_address("::1:80", why));
  EXPECT_FALSE(parse_address("127.0.0.1:65536", why));
  EXPECT_FALSE(parse_address("no-such-host.invalid:80", why));
  EXPECT_NE(why.find("cannot resolve"), std::string::npos);
}

}  // namespace
}  // namespace sidecar::config
