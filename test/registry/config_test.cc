#include "registry/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "config/discovered.h"
#include "config/loader.h"

namespace sidecar::registry {
namespace {

constexpr const char* kBase = R"(
listeners:
  - name: out
    direction: outbound
    address: 127.0.0.1:0
    routes: [ { match: { prefix: / }, cluster: users } ]
)";

std::shared_ptr<const config::Config> load(const std::string& yaml) {
  register_module();
  return config::load_string(std::string(kBase) + yaml, "test.yaml");
}

std::string errors_of(const std::string& yaml) {
  try {
    load(yaml);
  } catch (const config::ConfigError& e) {
    std::string all;
    for (const auto& m : e.messages()) all += m + "\n";
    return all;
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return {};
}

TEST(RegistryConfig, ParsesTheIssueExample) {
  ::setenv("REGISTRY_TEST_POD", "users-7f9c", 1);
  ::unsetenv("REGISTRY_TEST_ZONE");
  auto c = load(R"(
clusters:
  - name: users
    discovery: { etcd: { service: users, tags: [ v2 ] } }
registry:
  etcd:
    endpoints: [ http://10.0.0.1:2379, https://10.0.0.2:2379/ ]
    prefix: /services/
    ttl: 10s
    username: app
    password: secret
    tls: { ca: /ca.pem, cert: /c.pem, key: /k.pem }
  service:
    name: users
    instance_id: ${REGISTRY_TEST_POD}
    address: 10.1.2.3
    port: 8000
    tags: [ v2, canary ]
    metadata: { zone: "${REGISTRY_TEST_ZONE:-z1}", version: "2.3.1" }
)");
  auto r = c->section_as<RegistryConfig>("registry");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->etcd.endpoints,
            (std::vector<std::string>{"http://10.0.0.1:2379", "https://10.0.0.2:2379"}));
  EXPECT_EQ(r->etcd.ttl, std::chrono::seconds(10));
  EXPECT_EQ(r->etcd.tls.cert, "/c.pem");
  EXPECT_TRUE(r->register_service);
  EXPECT_EQ(r->service.instance_id, "users-7f9c");
  EXPECT_EQ(r->service.port, 8000);
  EXPECT_EQ(r->service.metadata.at("zone"), "z1");
  EXPECT_EQ(r->service.metadata.at("version"), "2.3.1");
  // The password never shows in /config.
  EXPECT_EQ(c->section("registry")->json.find("secret"), std::string::npos);
  ASSERT_EQ(c->clusters.size(), 1u);
  EXPECT_EQ(c->clusters[0].discovery.etcd_service, "users");
  EXPECT_EQ(c->clusters[0].discovery.tags, std::vector<std::string>{"v2"});
  EXPECT_TRUE(c->clusters[0].endpoints.empty());
}

TEST(RegistryConfig, DiscoveryOnlyWithoutService) {
  auto c = load(R"(
clusters: [ { name: users, discovery: { etcd: { service: users } } } ]
registry: { etcd: { endpoints: [ http://127.0.0.1:2379 ] } }
)");
  EXPECT_FALSE(c->section_as<RegistryConfig>("registry")->register_service);
}

TEST(RegistryConfig, ReportsMistakesWithPositions) {
  EXPECT_NE(errors_of(R"(
clusters: [ { name: users, endpoints: [ "127.0.0.1:1" ] } ]
registry: { etcd: { endpoints: [ 10.0.0.1:2379 ] } }
)")
                .find("test.yaml:9:"),
            std::string::npos);
  const std::string e = errors_of(R"(
clusters: [ { name: users, endpoints: [ "127.0.0.1:1" ] } ]
registry:
  etcd: { endpoints: [ http://a:1 ], ttl: 1s, prefix: /x, username: u }
  service: { name: a/b, port: 0, colour: red }
)");
  EXPECT_NE(e.find("ttl must be between 2s and 24h"), std::string::npos) << e;
  EXPECT_NE(e.find("prefix must end with '/'"), std::string::npos) << e;
  EXPECT_NE(e.find("username and password go together"), std::string::npos) << e;
  EXPECT_NE(e.find("name must be a non-empty name without '/'"), std::string::npos) << e;
  EXPECT_NE(e.find("colour"), std::string::npos) << e;
  EXPECT_NE(e.find("registry.service.port"), std::string::npos) << e;
}

TEST(RegistryConfig, UnsetVariableIsAnErrorAtItsPosition) {
  ::unsetenv("REGISTRY_TEST_UNSET");
  const std::string e = errors_of(R"(
clusters: [ { name: users, endpoints: [ "127.0.0.1:1" ] } ]
registry:
  etcd: { endpoints: [ http://127.0.0.1:2379 ] }
  service: { name: users, instance_id: "${REGISTRY_TEST_UNSET}" }
)");
  EXPECT_NE(e.find("test.yaml:11:40:"), std::string::npos) << e;
  EXPECT_NE(e.find("REGISTRY_TEST_UNSET"), std::string::npos) << e;
}

TEST(RegistryConfig, DiscoveryNeedsTheRegistrySection) {
  const std::string e = errors_of(R"(
clusters: [ { name: users, discovery: { etcd: { service: users } } } ]
)");
  EXPECT_NE(e.find("needs a top-level 'registry' section"), std::string::npos) << e;
  EXPECT_NE(errors_of(R"(
clusters: [ { name: users, discovery: { etcd: { service: "" } } } ]
registry: { etcd: { endpoints: [ http://127.0.0.1:2379 ] } }
)")
                .find("discovery.etcd.service"),
            std::string::npos);
  EXPECT_NE(errors_of(R"(
clusters: [ { name: users } ]
)")
                .find("needs endpoints (or discovery)"),
            std::string::npos);
}

TEST(DiscoveredEndpoints, ReplaceOnlyDiscoveredClusters) {
  auto c = load(R"(
clusters:
  - { name: users, discovery: { etcd: { service: users } } }
  - { name: orders, endpoints: [ "127.0.0.1:9" ], discovery: { etcd: { service: orders } } }
  - { name: static, endpoints: [ "127.0.0.1:7" ] }
registry: { etcd: { endpoints: [ http://127.0.0.1:2379 ] } }
)");
  // Nothing known yet: the configured endpoints, or none (503 UH).
  auto first = config::with_discovered_endpoints(c, {});
  EXPECT_EQ(first, c);  // nothing to change
  EXPECT_TRUE(first->clusters[0].endpoints.empty());
  EXPECT_EQ(first->clusters[1].endpoints[0].port, 9);
  EXPECT_TRUE(c->clusters[0].endpoints.empty());  // the input is never changed
  // Applying again changes nothing: the same snapshot.
  EXPECT_EQ(config::with_discovered_endpoints(first, {}), first);

  const config::Address a{"127.0.0.1", 8001, ""}, b{"127.0.0.1", 8002, ""};
  auto next = config::with_discovered_endpoints(
      first, {{"users", {a, b}}, {"orders", {}}, {"static", {a}}, {"nope", {a}}});
  EXPECT_EQ(next->clusters[0].endpoints, (std::vector<config::Address>{a, b}));
  EXPECT_TRUE(next->clusters[1].endpoints.empty());   // the last instance left
  EXPECT_EQ(next->clusters[2].endpoints[0].port, 7);  // no discovery: untouched
  EXPECT_EQ(config::with_discovered_endpoints(next, {{"users", {a, b}}, {"orders", {}}}), next);
}

}  // namespace
}  // namespace sidecar::registry
