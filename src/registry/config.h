// The `registry:` section (docs/registry.md, docs/config.md "registry"):
// the etcd cluster to talk to and, optionally, the service this sidecar
// registers its app as. Parsed in the binary; the work is done by
// libsidecar-registry.so, loaded when a config has the section.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/reader.h"

namespace sidecar::registry {

using config::Duration;
using namespace std::chrono_literals;

// TLS to etcd (client-cert-auth clusters: `cert` + `key`).
struct EtcdTls {
  std::string ca;    // PEM file trusted for etcd's certificates; "": the OS bundle
  std::string cert;  // client certificate (PEM), with `key`
  std::string key;
  bool operator==(const EtcdTls&) const = default;
};

struct EtcdSettings {
  // Base URLs ("http://10.0.0.1:2379", "https://..."), tried in order; the
  // one that answered last is used first.
  std::vector<std::string> endpoints;
  std::string prefix = "/services/";  // key: <prefix><service>/<instance_id>
  Duration ttl = 10s;                 // the lease; keepalive every ttl/3
  Duration timeout = 5s;              // one request to one endpoint
  std::string username;               // auth: /v3/auth/authenticate
  std::string password;
  EtcdTls tls;
  bool operator==(const EtcdSettings&) const = default;
};

// This app as registered. Empty fields get their defaults when the module
// starts (instance_id: the host name; address: the first non-loopback
// address; port: the first inbound listener's port).
struct ServiceSettings {
  std::string name;
  std::string instance_id;
  std::string address;
  uint16_t port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> metadata;
  uint32_t weight = 1;  // for callers' load balancers
  bool operator==(const ServiceSettings&) const = default;
};

struct RegistryConfig {
  EtcdSettings etcd;
  bool register_service = false;  // `service` given; without it, discovery only
  ServiceSettings service;
  bool operator==(const RegistryConfig&) const = default;
};

// The section's parser (config::Parser): returns a RegistryConfig.
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

// Registers the module kind "registry" (module/module.h) and its validator:
// a cluster with `discovery.etcd` needs a `registry` section.
void register_module();

}  // namespace sidecar::registry
