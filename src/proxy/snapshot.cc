#include "proxy/snapshot.h"

#include "filters/registry.h"
#include "tls/store.h"

namespace sidecar::proxy {

std::shared_ptr<const Snapshot> Snapshot::build(std::shared_ptr<const config::Config> config,
                                                stats::Store& store, const tls::Store& tls) {
  auto s = std::make_shared<Snapshot>();
  s->config = std::move(config);
  s->listeners.reserve(s->config->listeners.size());
  for (size_t i = 0; i < s->config->listeners.size(); ++i) {
    const config::Listener& l = s->config->listeners[i];
    http::Limits limits;
    limits.max_head_size = l.max_request_headers_size;
    limits.max_headers = l.max_request_headers_count;
    std::vector<std::shared_ptr<const http::HttpFilterFactory>> filters;
    for (const config::FilterConfig& f : l.filters) filters.push_back(filters::make_factory(f));
    s->listeners.push_back(ListenerRuntime{i, &l, RouteTable(l, *s->config, &store), limits,
                                           store.listener(l.name), std::move(filters),
                                           l.tls.enabled ? tls.listener(l.name) : nullptr});
    if (l.protocol == config::ListenerProtocol::kTcp) {
      s->listeners.back().cluster = s->config->cluster_index(l.cluster);
      s->listeners.back().tcp_stats = store.tcp(l.name);
    }
  }
  for (const config::Cluster& c : s->config->clusters) {
    auto& per_endpoint = s->endpoint_stats.emplace_back();
    for (const config::Address& a : c.endpoints) {
      per_endpoint.push_back(store.endpoint(c.name, a.to_string()));
    }
    s->cluster_tls.push_back(c.tls.enabled ? tls.cluster(c.name) : nullptr);
    s->cluster_breakers.push_back(upstream::CircuitBreaker::shared(c));
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
