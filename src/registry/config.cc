#include "registry/config.h"

#include <fmt/format.h>

#include "module/module.h"

namespace sidecar::registry {
namespace {

bool valid_name(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.size() <= 253;
}

void load_tls(config::Reader& r, const YAML::Node& n, EtcdTls& t) {
  if (!r.is_map(n, "registry.etcd.tls")) return;
  r.check_keys(n, "registry.etcd.tls", {"ca", "cert", "key"});
  if (auto v = n["ca"]) r.get_string(v, "registry.etcd.tls.ca", t.ca);
  if (auto v = n["cert"]) r.get_string(v, "registry.etcd.tls.cert", t.cert);
  if (auto v = n["key"]) r.get_string(v, "registry.etcd.tls.key", t.key);
  if (t.cert.empty() != t.key.empty()) {
    r.error(n, "registry.etcd.tls: cert and key go together");
  }
}

void load_etcd(config::Reader& r, const YAML::Node& n, EtcdSettings& e) {
  if (!r.is_map(n, "registry.etcd")) return;
  r.check_keys(n, "registry.etcd",
               {"endpoints", "prefix", "ttl", "timeout", "username", "password", "tls"});
  if (auto v = n["endpoints"]) {
    if (r.get_strings(v, "registry.etcd.endpoints", e.endpoints)) {
      if (e.endpoints.empty()) r.error(v, "registry.etcd.endpoints must not be empty");
      for (std::string& url : e.endpoints) {
        if (!url.starts_with("http://") && !url.starts_with("https://")) {
          r.error(v, fmt::format("registry.etcd.endpoints: '{}' is not an http:// or https:// URL",
                                 url));
        }
        while (url.ends_with('/')) url.pop_back();
      }
    }
  } else {
    r.error(n, "registry.etcd needs endpoints");
  }
  if (auto v = n["prefix"]) {
    if (r.get_string(v, "registry.etcd.prefix", e.prefix) &&
        (e.prefix.empty() || !e.prefix.ends_with('/'))) {
      r.error(v, "registry.etcd.prefix must end with '/'");
    }
  }
  if (auto v = n["ttl"]) {
    if (r.get_duration(v, "registry.etcd.ttl", e.ttl) && (e.ttl < 2s || e.ttl > 24h)) {
      r.error(v, "registry.etcd.ttl must be between 2s and 24h (etcd leases count seconds)");
    }
  }
  if (auto v = n["timeout"]) {
    if (r.get_duration(v, "registry.etcd.timeout", e.timeout) &&
        (e.timeout < 100ms || e.timeout > 60s)) {
      r.error(v, "registry.etcd.timeout must be between 100ms and 60s");
    }
  }
  if (auto v = n["username"]) r.get_string(v, "registry.etcd.username", e.username);
  if (auto v = n["password"]) r.get_string(v, "registry.etcd.password", e.password);
  if (e.username.empty() != e.password.empty()) {
    r.error(n, "registry.etcd: username and password go together");
  }
  if (auto v = n["tls"]) load_tls(r, v, e.tls);
}

void load_service(config::Reader& r, const YAML::Node& n, ServiceSettings& s) {
  if (!r.is_map(n, "registry.service")) return;
  r.check_keys(n, "registry.service",
               {"name", "instance_id", "address", "port", "tags", "metadata", "weight"});
  if (auto v = n["name"]) {
    if (r.get_string(v, "registry.service.name", s.name) && !valid_name(s.name)) {
      r.error(v, "registry.service.name must be a non-empty name without '/'");
    }
  } else {
    r.error(n, "registry.service needs a name");
  }
  if (auto v = n["instance_id"]) {
    if (r.get_string(v, "registry.service.instance_id", s.instance_id) &&
        !valid_name(s.instance_id)) {
      r.error(v, "registry.service.instance_id must be a non-empty name without '/'");
    }
  }
  if (auto v = n["address"]) r.get_string(v, "registry.service.address", s.address);
  if (auto v = n["port"]) {
    uint32_t port = 0;
    if (r.get_count(v, "registry.service.port", port, 1, 65535)) s.port = uint16_t(port);
  }
  if (auto v = n["tags"]) r.get_strings(v, "registry.service.tags", s.tags);
  if (auto v = n["metadata"]) {
    if (r.is_map(v, "registry.service.metadata")) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::string key, value;
        if (r.get_string(it->first, "registry.service.metadata key", key) &&
            r.get_string(it->second, fmt::format("registry.service.metadata.{}", key), value)) {
          s.metadata[key] = value;
        }
      }
    }
  }
  if (auto v = n["weight"]) r.get_count(v, "registry.service.weight", s.weight, 1, 1000000);
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<RegistryConfig>();
  if (!reader.is_map(node, "registry")) return c;
  reader.check_keys(node, "registry", {"etcd", "service"});
  if (auto v = node["etcd"]) {
    load_etcd(reader, v, c->etcd);
  } else {
    reader.error(node, "registry needs etcd");
  }
  if (auto v = node["service"]) {
    c->register_service = true;
    load_service(reader, v, c->service);
  }
  return c;
}

void register_module() {
  module::register_kind({"registry", parse, nullptr});
  config::register_validator(
      "registry", [](const config::Config& c, std::vector<std::string>& errors) {
        if (c.section("registry") != nullptr) return;
        for (size_t i = 0; i < c.clusters.size(); ++i) {
          if (c.clusters[i].discovery.etcd_service.empty()) continue;
          errors.push_back(fmt::format(
              "{}: clusters[{}].discovery.etcd needs a top-level 'registry' section with etcd",
              c.source, i));
        }
      });
}

}  // namespace sidecar::registry
