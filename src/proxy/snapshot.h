// A config snapshot compiled for the data path: route tables and parser
// limits per listener. Immutable and shared by all workers; a connection
// keeps the snapshot it started with until it closes.
#pragma once

#include <memory>
#include <vector>

#include "config/config.h"
#include "http/http1_parser.h"
#include "proxy/router.h"

namespace sidecar::proxy {

struct ListenerRuntime {
  size_t index = 0;
  const config::Listener* config = nullptr;
  RouteTable routes;
  http::Limits limits;
};

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerRuntime> listeners;

  static std::shared_ptr<const Snapshot> build(std::shared_ptr<const config::Config> config);
  // The listener called `name`, or nullptr.
  const ListenerRuntime* find(std::string_view name) const;
};

}  // namespace sidecar::proxy
