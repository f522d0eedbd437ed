#include "acme/config.h"

#include <gtest/gtest.h>

#include "config/config_errors.h"
#include "config/loader.h"

namespace sidecar::acme {
namespace {

constexpr const char* kListeners = R"(
clusters: [ { name: app, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: http
    address: 127.0.0.1:0
    routes: [ { match: { prefix: / }, cluster: app } ]
  - name: public
    address: 127.0.0.1:0
    tls: {}
    routes: [ { match: { prefix: / }, cluster: app } ]
)";

std::vector<std::string> errors_of(const std::string& yaml) {
  register_module();
  return config::testing::errors_of(yaml);
}

using config::testing::has_error;

std::string all(const std::vector<std::string>& errors) {
  std::string s;
  for (const auto& e : errors) s += e + "\n";
  return s;
}

TEST(AcmeConfig, ParsesTheSectionWithDefaults) {
  register_module();
  auto c = config::load_string(std::string(kListeners) + R"(
acme:
  email: ops@example.com
  domains: [ app.example.com, www.example.com ]
  storage: /var/lib/sidecar/acme
  listener: public
  challenge_listener: http
  renew_before: 30d
  retry_back_off: { base_interval: 2s, max_interval: 1m }
)",
                               "t");
  auto a = c->section_as<AcmeConfig>("acme");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->directory, kLetsEncrypt);
  EXPECT_EQ(a->domains.size(), 2u);
  EXPECT_EQ(a->renew_before, std::chrono::hours(24 * 30));
  EXPECT_EQ(a->key_type, "p256");
  EXPECT_EQ(a->challenge, "http-01");
  EXPECT_EQ(a->timeout, std::chrono::minutes(10));
  EXPECT_EQ(a->retry_base, std::chrono::seconds(2));
  EXPECT_EQ(a->retry_max, std::chrono::minutes(1));
  EXPECT_EQ(a->listener_origin, "t:16:13");
}

TEST(AcmeConfig, ReportsEveryProblemWithItsPosition) {
  auto e = errors_of(std::string(kListeners) + R"(
acme:
  directory: http://acme.example.com/dir
  email: "not an address"
  domains: [ "*.example.com", Upper.example.com, app, app.example.com, app.example.com ]
  storage: relative/dir
  listener: public
  challenge: dns-01
  renew_before: 3x
  key_type: ed25519
  retry_back_off: { base_interval: 1m, max_interval: 1s }
  surprise: 1
)");
  EXPECT_TRUE(has_error(e, "test.yaml:13:14: acme.directory must be an https:// URL")) << all(e);
  EXPECT_TRUE(has_error(e, "test.yaml:14:10: acme.email must be one address")) << all(e);
  EXPECT_TRUE(has_error(e, "acme.domains[0] '*.example.com' is a wildcard")) << all(e);
  EXPECT_TRUE(has_error(e, "acme.domains[1] 'Upper.example.com' must be lower case")) << all(e);
  EXPECT_TRUE(has_error(e, "acme.domains[2] 'app' must be a fully qualified name")) << all(e);
  EXPECT_TRUE(has_error(e, "acme.domains: 'app.example.com' is given twice")) << all(e);
  EXPECT_TRUE(has_error(e, "test.yaml:16:12: acme.storage must be an absolute path")) << all(e);
  EXPECT_TRUE(has_error(e, "acme.challenge")) << all(e);
  EXPECT_TRUE(has_error(e, "test.yaml:19:17: acme.renew_before: invalid duration")) << all(e);
  EXPECT_TRUE(has_error(e, "acme.key_type")) << all(e);
  EXPECT_TRUE(has_error(e, "max_interval must not be less than base_interval")) << all(e);
  EXPECT_TRUE(has_error(e, "unknown key 'surprise' in acme")) << all(e);
}

TEST(AcmeConfig, NeedsDomainsStorageAndListener) {
  auto e = errors_of(std::string(kListeners) + "acme: { challenge_listener: http }\n");
  EXPECT_TRUE(has_error(e, "acme needs domains")) << all(e);
  EXPECT_TRUE(has_error(e, "acme needs storage")) << all(e);
  EXPECT_TRUE(has_error(e, "acme needs listener")) << all(e);
}

TEST(AcmeConfig, ChecksTheListenersAgainstTheWholeConfig) {
  auto e = errors_of(std::string(kListeners) + R"(
acme:
  domains: [ app.example.com ]
  storage: /tmp/acme
  listener: nowhere
  challenge_listener: public
  ca: /nonexistent/ca.pem
)");
  EXPECT_TRUE(has_error(e, "test.yaml:15:13: acme.listener: no listener 'nowhere'")) << all(e);
  EXPECT_TRUE(has_error(e, "acme.challenge_listener: listener 'public' has tls")) << all(e);
  EXPECT_TRUE(has_error(e, "listeners[1].tls needs certificates (acme serves listener 'nowhere'"))
      << all(e);
  EXPECT_TRUE(has_error(e, "test.yaml:17:7: acme.ca:")) << all(e);
}

TEST(AcmeConfig, WithoutChallengeListenerWantsAPlainListenerOnPort80) {
  auto e = errors_of(std::string(kListeners) + R"(
acme: { domains: [ app.example.com ], storage: /tmp/acme, listener: public }
)");
  EXPECT_TRUE(has_error(e, "acme needs challenge_listener")) << all(e);
}

TEST(AcmeConfig, ValidDomains) {
  std::string why;
  EXPECT_TRUE(valid_domain("localhost", why));
  EXPECT_TRUE(valid_domain("a-b.example.com", why));
  EXPECT_TRUE(valid_domain("xn--bcher-kva.example", why));
  EXPECT_FALSE(valid_domain("-a.example.com", why));
  EXPECT_FALSE(valid_domain("a..example.com", why));
  EXPECT_FALSE(valid_domain("a.example.com.", why));
  EXPECT_FALSE(valid_domain("a_b.example.com", why));
  EXPECT_FALSE(valid_domain(std::string(64, 'a') + ".example.com", why));
  EXPECT_FALSE(valid_domain("192.0.2.1.", why));
  EXPECT_FALSE(valid_domain("192.0.2.1", why));
  EXPECT_FALSE(valid_domain("", why));
}

}  // namespace
}  // namespace sidecar::acme
