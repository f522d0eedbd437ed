// Endpoints found by discovery (the `registry` module's etcd watch, see
// docs/registry.md) applied to a config: the process derives a new immutable
// snapshot with the discovered clusters' endpoints replaced and publishes it
// to the workers the way a reload does, so the data path only ever sees
// whole, immutable configs.
//
// Thread safety: pure functions of their arguments.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace sidecar::config {

// The endpoint of a discovered cluster without any instance (none registered,
// or none known yet and none configured): 127.0.0.1:0, where a connection is
// refused at once, so requests fail (503) instead of reaching a stale peer.
// The proxy needs at least one endpoint per cluster.
Address no_endpoint();

// `config` with, for every cluster that has `discovery`, its endpoints
// replaced by `discovered[cluster name]` when present (an empty set becomes
// no_endpoint()), else kept as configured (no_endpoint() when none are).
// Clusters without discovery and names without such a cluster are left
// alone. Returns `config` itself when nothing changes.
std::shared_ptr<const Config> with_discovered_endpoints(
    std::shared_ptr<const Config> config,
    const std::map<std::string, std::vector<Address>>& discovered);

}  // namespace sidecar::config
