// Discovery of one cluster's endpoints (docs/registry.md "Discovery"): the
// live instances of a service under <prefix><service>/ in etcd, read once
// and then followed with a watch from the revision read, published through
// Host::update_cluster_endpoints whenever the set (after the tag filter)
// changes. On its own thread.
//
// When etcd cannot be reached the last known endpoints stay (stale_seconds()
// says for how long); the watch resumes from the last revision seen, and a
// compacted revision makes it read everything again.
//
// Thread safety: status() from any thread; the rest from the main thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "module/module.h"
#include "registry/config.h"
#include "registry/etcd_json.h"

namespace sidecar::registry {

struct DiscoveryStatus {
  std::string cluster;
  std::string service;
  std::vector<std::string> endpoints;  // as published
  int64_t revision = 0;                // etcd revision seen last
  bool watching = false;               // a watch stream is open
  double stale_seconds = 0;            // since etcd was last heard from (0 while watching)
  uint64_t updates = 0;                // endpoint sets published
  uint64_t full_reads = 0;             // ranges of the whole prefix
  std::string last_error;
};

// The endpoints of `instances` that carry every tag of `tags`, as sorted
// addresses (host names resolved); instances whose address does not
// resolve are left out.
std::vector<config::Address> select_endpoints(const std::vector<etcd::Instance>& instances,
                                              const std::vector<std::string>& tags);

class Discoverer {
 public:
  Discoverer(EtcdSettings etcd, const config::Cluster& cluster, module::Host& host);
  ~Discoverer();
  void start();
  void stop(std::chrono::steady_clock::time_point deadline);
  DiscoveryStatus status() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace sidecar::registry
