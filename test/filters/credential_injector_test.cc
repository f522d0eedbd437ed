#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/loader.h"
#include "filters/credential_injector/source.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/sidecar-ci-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

std::shared_ptr<const config::Config> load(const std::string& filter_config) {
  register_builtin();
  return config::load_string(R"(
clusters:
  - { name: partner, endpoints: [ "127.0.0.1:1" ] }
  - { name: idp, endpoints: [ "127.0.0.1:2" ] }
listeners:
  - name: out
    address: 127.0.0.1:0
    direction: outbound
    routes: [ { cluster: partner } ]
    filters:
      - name: credential_injector
        config: )" + filter_config +
                                 "\n",
                             "t");
}

struct Outbound {
  testing::TestCallbacks r;
  std::string storage;
  std::unique_ptr<http::HttpFilter> filter;
  http::FilterStatus status;
  Outbound(const std::shared_ptr<const http::HttpFilterFactory>& factory,
           const std::string& fields = "") {
    storage = "GET /v1 HTTP/1.1\r\nHost: partner\r\n" + fields + "\r\n";
    http::RequestParser parser;
    EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
    filter = factory->create();
    status = filter->on_request_headers(r);
  }
};

TEST(CredentialInjector, FromFiles) {
  TempDir d;
  const std::string token = d.write("token", "eyJ.token.sig\n");
  const std::string basic = d.write("basic", "user:pass\n");
  const std::string key = d.write("key", "k-123");
  auto bearer = load("{ bearer_from_file: { path: " + token + " } }");
  auto f = make_factory(bearer->listeners[0].filters[0]);
  Outbound a(f);
  EXPECT_EQ(a.status, http::FilterStatus::kContinue);
  EXPECT_EQ(a.r.log, "-req authorization;+req authorization=Bearer eyJ.token.sig;");
  // The app's own Authorization is kept (overwrite: false)...
  Outbound kept(f, "Authorization: Bearer app\r\n");
  EXPECT_EQ(kept.r.log, "");
  // ... or replaced.
  auto over = load("{ overwrite: true, bearer_from_file: { path: " + token + " } }");
  Outbound replaced(make_factory(over->listeners[0].filters[0]), "Authorization: Bearer app\r\n");
  EXPECT_EQ(replaced.r.log, "-req authorization;+req authorization=Bearer eyJ.token.sig;");
  auto b = load("{ basic_from_file: { path: " + basic + " } }");
  Outbound basic_out(make_factory(b->listeners[0].filters[0]));
  EXPECT_EQ(basic_out.r.log, "-req authorization;+req authorization=Basic dXNlcjpwYXNz;");
  auto h = load("{ header_from_file: { name: X-Api-Key, path: " + key + " } }");
  Outbound header_out(make_factory(h->listeners[0].filters[0]));
  EXPECT_EQ(header_out.r.log, "-req x-api-key;+req x-api-key=k-123;");
  auto missing = load("{ bearer_from_file: { path: " + (d.path / "nope").string() + " } }");
  Outbound none(make_factory(missing->listeners[0].filters[0]));
  EXPECT_EQ(none.status, http::FilterStatus::kStopIteration);
  EXPECT_EQ(none.r.reply_status, 503);
  EXPECT_EQ(none.r.detail, "credential_injector_credential_unavailable");
}

TEST(CredentialInjector, OAuth2OneFetchForConcurrentRequestsThenCached) {
  TempDir d;
  const std::string secret = d.write("secret", "s3cr&t\n");
  auto c = load(R"({ oauth2_client_credentials: {
            token_endpoint: { uri: "http://idp.example/oauth2/token", cluster: idp, timeout: 3s },
            client_id: my-app, client_secret_file: )" +
                secret + R"(, scopes: [ read, write ], audience: partner } })");
  auto f = make_factory(c->listeners[0].filters[0]);
  Outbound first(f);
  Outbound second(f);
  EXPECT_EQ(first.status, http::FilterStatus::kStopIteration);
  EXPECT_EQ(second.status, http::FilterStatus::kStopIteration);
  ASSERT_EQ(first.r.client.pending.size(), 1u);
  EXPECT_TRUE(second.r.client.pending.empty());
  const http::ClientRequest& req = first.r.client.pending[0].request;
  EXPECT_EQ(first.r.client.pending[0].cluster, "idp");
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/oauth2/token");
  EXPECT_EQ(req.body,
            "grant_type=client_credentials&client_id=my-app&client_secret=s3cr%26t&scope=read+"
            "write&audience=partner");
  http::ClientResponse ok;
  ok.status = 200;
  ok.body = R"({"access_token":"tok-1","token_type":"Bearer","expires_in":3600})";
  first.r.client.pending[0].done(ok);
  first.r.io_context.run();
  second.r.io_context.run();
  EXPECT_EQ(first.r.continued, 1);
  EXPECT_EQ(second.r.continued, 1);
  EXPECT_EQ(second.r.log, "-req authorization;+req authorization=Bearer tok-1;");
  Outbound third(f);
  EXPECT_EQ(third.status, http::FilterStatus::kContinue);
  EXPECT_TRUE(third.r.client.pending.empty());
}

TEST(CredentialInjector, OAuth2FailureIsA503WithTheReason) {
  TempDir d;
  const std::string secret = d.write("secret", "x");
  auto c = load(R"({ oauth2_client_credentials: {
            token_endpoint: { uri: "http://idp/token", cluster: idp },
            client_id: a, client_secret_file: )" +
                secret + " } }");
  auto f = make_factory(c->listeners[0].filters[0]);
  Outbound o(f);
  http::ClientResponse bad;
  bad.status = 401;
  o.r.client.pending[0].done(bad);
  o.r.io_context.run();
  EXPECT_EQ(o.r.reply_status, 503);
  EXPECT_NE(o.r.reply_body.find("the token endpoint answered 401"), std::string::npos)
      << o.r.reply_body;
  // Right after a failure: answered at once, no new fetch.
  Outbound again(f);
  EXPECT_EQ(again.status, http::FilterStatus::kStopIteration);
  EXPECT_TRUE(again.r.client.pending.empty());
  EXPECT_EQ(again.r.reply_status, 503);
}

}  // namespace
}  // namespace sidecar::filters
