#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

std::shared_ptr<const config::Config> load(const std::string& extra = "") {
  register_builtin();
  return config::load_string(R"(
clusters:
  - { name: a, endpoints: [ "127.0.0.1:1" ] }
  - { name: authz, endpoints: [ "127.0.0.1:2" ] }
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: ext_authz
        config:
          http_service:
            server_uri: { uri: "http://authz.local", cluster: authz, timeout: 250ms }
            path_prefix: /check
            authorization_request:
              allowed_headers: { patterns: [ { exact: Cookie }, { prefix: x-user- } ] }
              headers_to_add: [ { key: x-from, value: sidecar } ]
            authorization_response:
              allowed_upstream_headers: { patterns: [ { exact: x-user-id } ] }
              allowed_client_headers: { patterns: [ { exact: www-authenticate } ] }
)" + extra,
                             "t");
}

struct Check {
  std::shared_ptr<const config::Config> config = load();
  testing::TestCallbacks r;
  std::unique_ptr<http::HttpFilter> filter;
  std::string storage;
  Check(std::shared_ptr<const config::Config> c = load(), const std::string& length = "0")
      : config(std::move(c)) {
    storage =
        "POST /api?x=1 HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer t\r\nCookie: s=1\r\n"
        "X-User-Name: ann\r\nX-Other: no\r\nContent-Length: " +
        length + "\r\n\r\n";
    http::RequestParser parser;
    EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
    r.path_value = "/api?x=1";
    r.authority_value = "app";
    filter = make_factory(config->listeners[0].filters[0])->create();
  }
};

TEST(ExtAuthzFilter, SendsTheCheckAndPassesAllowedHeadersUpstream) {
  Check run;
  EXPECT_EQ(run.filter->on_request_headers(run.r), http::FilterStatus::kStopIteration);
  ASSERT_EQ(run.r.client.pending.size(), 1u);
  auto& call = run.r.client.pending[0];
  EXPECT_EQ(call.cluster, "authz");
  EXPECT_EQ(call.request.method, "POST");
  EXPECT_EQ(call.request.path, "/check/api?x=1");
  EXPECT_EQ(call.request.authority, "app");
  EXPECT_EQ(call.request.timeout, std::chrono::milliseconds(250));
  std::string sent;
  for (const auto& [k, v] : call.request.headers) sent += k + "=" + v + ";";
  EXPECT_EQ(sent, "authorization=Bearer t;cookie=s=1;x-user-name=ann;x-from=sidecar;");
  http::ClientResponse ok;
  ok.status = 200;
  ok.headers = {{"x-user-id", "42"}, {"x-secret", "no"}};
  call.done(ok);
  EXPECT_EQ(run.r.continued, 1);
  EXPECT_EQ(run.r.log, "-req x-user-id;+req x-user-id=42;");
}

TEST(ExtAuthzFilter, ADenialIsTheServicesAnswer) {
  Check run;
  run.filter->on_request_headers(run.r);
  http::ClientResponse no;
  no.status = 401;
  no.headers = {{"www-authenticate", "Basic"}, {"content-type", "text/plain"}, {"x-internal", "1"}};
  no.body = "who are you\n";
  run.r.client.pending[0].done(no);
  EXPECT_EQ(run.r.continued, 0);
  ASSERT_TRUE(run.r.response);
  EXPECT_EQ(run.r.response->status, 401);
  EXPECT_EQ(run.r.response->body, "who are you\n");
  EXPECT_EQ(run.r.response->headers.size(), 2u);
  EXPECT_EQ(run.r.detail, "ext_authz_denied");
}

TEST(ExtAuthzFilter, NoAnswerIsStatusOnErrorOrFailureModeAllow) {
  {
    Check run;
    run.filter->on_request_headers(run.r);
    http::ClientResponse failed;
    failed.error = "timed out after 250ms";
    run.r.client.pending[0].done(failed);
    EXPECT_EQ(run.r.reply_status, 403);
    EXPECT_EQ(run.r.detail, "ext_authz_error");
  }
  {
    Check run(load("          failure_mode_allow: true\n"));
    run.filter->on_request_headers(run.r);
    http::ClientResponse failed;
    failed.error = "connect failed";
    run.r.client.pending[0].done(failed);
    EXPECT_EQ(run.r.continued, 1);
    EXPECT_FALSE(run.r.reply_status);
  }
  {
    // The stream went away: the late answer is dropped.
    Check run;
    run.filter->on_request_headers(run.r);
    run.filter->on_stream_end();
    http::ClientResponse ok;
    ok.status = 200;
    run.r.client.pending[0].done(ok);
    EXPECT_EQ(run.r.continued, 0);
  }
}

TEST(ExtAuthzFilter, WithRequestBodyBuffersThenSendsTheBody) {
  const auto config = load("          with_request_body: { max_request_bytes: 10 }\n");
  {
    Check run(config, "8");
    EXPECT_EQ(run.filter->on_request_headers(run.r), http::FilterStatus::kStopIteration);
    EXPECT_EQ(run.r.buffer_limit, 10u);  // waits for the body
    EXPECT_TRUE(run.r.client.pending.empty());
    run.filter->on_request_body_buffered("{\"a\":1}", true, run.r);
    ASSERT_EQ(run.r.client.pending.size(), 1u);
    const auto& req = run.r.client.pending[0].request;
    EXPECT_EQ(req.body, "{\"a\":1}");
    EXPECT_EQ(req.headers.back(),
              (std::pair<std::string, std::string>{"x-envoy-auth-partial-body", "false"}));
  }
  {
    // Known to be longer: 413 at once, nothing buffered or sent.
    Check run(config, "11");
    EXPECT_EQ(run.filter->on_request_headers(run.r), http::FilterStatus::kStopIteration);
    EXPECT_EQ(run.r.reply_status.value_or(0), 413);
    EXPECT_EQ(run.r.detail, "ext_authz_body_too_large");
    EXPECT_EQ(run.r.buffer_limit, 0u);
  }
  {
    // Longer than announced (chunked): 413 once the buffer overflows.
    Check run(config, "3");
    run.filter->on_request_headers(run.r);
    run.filter->on_request_body_buffered("0123456789", false, run.r);
    EXPECT_EQ(run.r.reply_status.value_or(0), 413);
    EXPECT_TRUE(run.r.client.pending.empty());
  }
  {
    // allow_partial_message: the first bytes go, marked partial.
    Check run(load("          with_request_body: { max_request_bytes: 4, allow_partial_message: "
                   "true, pack_as_bytes: true }\n"),
              "100");
    EXPECT_EQ(run.filter->on_request_headers(run.r), http::FilterStatus::kStopIteration);
    EXPECT_EQ(run.r.buffer_limit, 4u);
    run.filter->on_request_body_buffered("0123", false, run.r);
    ASSERT_EQ(run.r.client.pending.size(), 1u);
    EXPECT_EQ(run.r.client.pending[0].request.body, "0123");
    EXPECT_EQ(run.r.client.pending[0].request.headers.back().second, "true");
  }
  {
    // No body: the check goes at once, with an empty body.
    Check run(config, "0");
    run.filter->on_request_headers(run.r);
    EXPECT_EQ(run.r.buffer_limit, 0u);
    ASSERT_EQ(run.r.client.pending.size(), 1u);
  }
}

TEST(ExtAuthzFilter, ConfigErrors) {
  register_builtin();
  try {
    config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: ext_authz
        config: { http_service: { server_uri: { uri: "http://x", cluster: nope } } }
)",
                        "t");
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no cluster named 'nope'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sidecar::filters
