#include "proxy/snapshot.h"

namespace sidecar::proxy {

std::shared_ptr<const Snapshot> Snapshot::build(std::shared_ptr<const config::Config> config) {
  auto s = std::make_shared<Snapshot>();
  s->config = std::move(config);
  s->listeners.reserve(s->config->listeners.size());
  for (size_t i = 0; i < s->config->listeners.size(); ++i) {
    const config::Listener& l = s->config->listeners[i];
    http::Limits limits;
    limits.max_head_size = l.max_request_headers_size;
    limits.max_headers = l.max_request_headers_count;
    s->listeners.push_back(ListenerRuntime{i, &l, RouteTable(l, *s->config), limits});
  }
  return s;
}

const ListenerRuntime* Snapshot::find(std::string_view name) const {
  for (const ListenerRuntime& l : listeners) {
    if (l.config->name == name) return &l;
  }
  return nullptr;
}

}  // namespace sidecar::proxy
