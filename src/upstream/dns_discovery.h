// DNS discovery of one cluster (`discovery: { dns: ... }`, Envoy's
// STRICT_DNS): every target name is resolved with c-ares (asynchronous, on
// the health thread, never getaddrinfo on a worker) every refresh_rate, or
// after the answer's TTL with respect_ttl (at least 5 s, Envoy's
// dns_min_refresh_rate); every A/AAAA record is an endpoint (lookup_family:
// auto = both, v4 = A, v6 = AAAA). A name that does not exist (NXDOMAIN, no
// records) has no endpoints; a failed resolution (timeout, server failure)
// keeps the target's last answer and is counted. When the union of the
// answers changes, `publish` receives it (sorted), and the process turns it
// into a new endpoint snapshot (config/discovered.h), where endpoints that
// left drain instead of being cut.
//
// Thread safety: created, used and destroyed on the health thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "config/config.h"

namespace sidecar::upstream {

class ClusterHealth;

class DnsDiscoverer {
 public:
  using Publish = std::function<void(const std::string& cluster, std::vector<config::Address>)>;
  DnsDiscoverer(boost::asio::io_context& io, std::string cluster, config::DnsDiscovery config,
                Publish publish);
  ~DnsDiscoverer();
  DnsDiscoverer(const DnsDiscoverer&) = delete;
  DnsDiscoverer& operator=(const DnsDiscoverer&) = delete;

  const config::DnsDiscovery& config() const;
  // Resolves now, then on schedule.
  void start();
  // Cancels queries and timers (their callbacks become no-ops).
  void stop();

  struct State;  // dns_discovery.cc

 private:
  std::shared_ptr<State> state_;
};

}  // namespace sidecar::upstream
