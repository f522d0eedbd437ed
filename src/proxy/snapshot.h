// A config snapshot compiled for the data path: route tables and parser
// limits per listener. Immutable and shared by all workers; a connection
// keeps the snapshot it started with until it closes.
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "http/filter.h"
#include "http/http1_parser.h"
#include "proxy/router.h"
#include "stats/stats.h"
#include "tls/slot.h"
#include "upstream/circuit_breaker.h"

namespace sidecar::tls {
class Store;
}

namespace sidecar::proxy {

struct ListenerRuntime {
  size_t index = 0;
  const config::Listener* config = nullptr;
  RouteTable routes;
  http::Limits limits;
  std::vector<stats::ListenerStats*> stats;                             // by worker index
  std::vector<std::shared_ptr<const http::HttpFilterFactory>> filters;  // in order
  std::shared_ptr<tls::ServerSlot> tls;                                 // null: plain TCP
  // protocol tcp: the cluster (index into Config::clusters) and the stats
  // blocks by worker index; -1 and empty otherwise.
  int cluster = -1;
  std::vector<stats::TcpStats*> tcp_stats;
};

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerRuntime> listeners;
  // [cluster][endpoint][worker]
  std::vector<std::vector<std::vector<stats::EndpointStats*>>> endpoint_stats;
  std::vector<std::shared_ptr<tls::ClientSlot>> cluster_tls;  // by cluster; null: plain TCP
  // By cluster: the process-wide circuit breakers (kept across reloads).
  std::vector<std::shared_ptr<upstream::CircuitBreaker>> cluster_breakers;

  // Compiles `config`, taking the stats blocks of its label sets from
  // `store` and the TLS contexts from `tls` (which has applied `config`).
  static std::shared_ptr<const Snapshot> build(std::shared_ptr<const config::Config> config,
                                               stats::Store& store, const tls::Store& tls);
  // The listener called `name`, or nullptr.
  const ListenerRuntime* find(std::string_view name) const;
};

}  // namespace sidecar::proxy
