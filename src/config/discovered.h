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

// `config` with, for every cluster that has `discovery`, its endpoints
// replaced by `discovered[cluster name]` when present, else kept as
// configured. A cluster may end up with no endpoint at all (no instance
// registered, or a DNS name not resolved yet): its requests get a 503 with
// the UH response flag, never a stale peer.
// Clusters without discovery and names without such a cluster are left
// alone. Returns `config` itself when nothing changes.
std::shared_ptr<const Config> with_discovered_endpoints(
    std::shared_ptr<const Config> config,
    const std::map<std::string, std::vector<Address>>& discovered);

}  // namespace sidecar::config
