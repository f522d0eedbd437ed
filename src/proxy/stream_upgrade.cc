// The stream's side of upgrades (proxy/upgrade.h, docs/proxy.md "Upgrades
// and WebSocket"): the route's consent, the switch at the upstream's 101,
// and the client's bytes flowing as a request body until it ends its side.
#include <spdlog/spdlog.h>

#include "proxy/stream.h"
#include "proxy/upgrade.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

bool Stream::check_upgrade() {
  const std::string_view type = upgrade_type(*req_);
  // An upgrade with a request body (rare; h2c's) goes on as a plain
  // request: Upgrade is dropped as hop-by-hop and the upstream answers it.
  if (type.empty() || req_->body != http::BodyKind::kNone) return true;
  if (!upgrade_allowed(route_->config->upgrade, type)) {
    // What Envoy answers an upgrade no upgrade_config enables.
    SPDLOG_DEBUG("{}: upgrade '{}' not allowed by route {}", peer_ip_, type, route_->config->name);
    detail_ = "upgrade_failed";
    reject(kRejectUpgradeFailed);
    local_reply(403, "upgrade not allowed on this route\n", false);
    return false;
  }
  const auto cluster = info_->worker->cluster_for(*snapshot_, route_->cluster);
  if (cluster->config().protocol != config::UpstreamProtocol::kHttp1 &&
      cluster->config().protocol != config::UpstreamProtocol::kAuto) {
    // An HTTP/2 upstream would need an extended CONNECT of its own.
    detail_ = "upgrade_failed";
    reject(kRejectUpgradeFailed);
    local_reply(501, "upgrades to an HTTP/2 cluster are not supported\n", false);
    return false;
  }
  upgrade_ = type;
  return true;
}

void Stream::begin_tunnel() {
  tunnel_ = true;
  // The route timeout covered the wait for the switch; from now on only
  // the idle timeout ends a quiet tunnel.
  response_deadline_ = Clock::time_point::max();
  req_sent_ = true;   // the head is (being) written: nothing sets a response deadline again
  req_held_ = false;  // nothing is retried after a switch
  req_done_ = false;  // the client's bytes are the request body from now on
  info_->listener_stats->upgrades_total.add();
  info_->listener_stats->upgrades_active.add();
  codec_->start_tunnel(*this);
}

void Stream::pump_tunnel_request() {
  // With the head still being written, on_upstream_written starts it.
  if (!active_ || us_writing_ || upstream_ == nullptr || req_done_) return;
  codec_->await_request_body(*this);
}

config::Duration Stream::idle_timeout() const {
  if (route_ != nullptr && route_->config->idle_timeout.count() > 0) {
    return route_->config->idle_timeout;
  }
  return listener_->config->stream_idle_timeout;
}

}  // namespace sidecar::proxy
