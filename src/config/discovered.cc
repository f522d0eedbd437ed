#include "config/discovered.h"

namespace sidecar::config {

std::shared_ptr<const Config> with_discovered_endpoints(
    std::shared_ptr<const Config> config,
    const std::map<std::string, std::vector<Address>>& discovered) {
  std::shared_ptr<Config> next;
  for (size_t i = 0; i < config->clusters.size(); ++i) {
    const Cluster& c = config->clusters[i];
    if (c.discovery.etcd_service.empty() && !c.discovery.dns.enabled) continue;
    std::vector<Address> wanted = c.endpoints;
    if (auto it = discovered.find(c.name); it != discovered.end()) wanted = it->second;
    if (wanted == c.endpoints) continue;
    if (!next) next = std::make_shared<Config>(*config);
    next->clusters[i].endpoints = std::move(wanted);
  }
  if (!next) return config;
  return next;
}

}  // namespace sidecar::config
