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

namespace sidecar::proxy {

struct ListenerRuntime {
  size_t index = 0;
  const config::Listener* config = nullptr;
  RouteTable routes;
  http::Limits limits;
  std::vector<stats::ListenerStats*> stats;                             // by worker index
  std::vector<std::shared_ptr<const http::HttpFilterFactory>> filters;  // in order
};

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerRuntime> listeners;
  // [cluster][endpoint][worker]
  std::vector<std::vector<std::vector<stats::EndpointStats*>>> endpoint_stats;

  // Compiles `config`, taking the stats blocks of its label sets from `store`.
  static std::shared_ptr<const Snapshot> build(std::shared_ptr<const config::Config> config,
                                               stats::Store& store);
  // The listener called `name`, or nullptr.
  const ListenerRuntime* find(std::string_view name) const;
};

}  // namespace sidecar::proxy
