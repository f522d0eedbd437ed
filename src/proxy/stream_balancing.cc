// The stream's part in endpoint choice (docs/resilience.md): the route's
// hash_policy key and weighted_clusters choice, once per request, and the
// endpoint of each attempt from the cluster's balancer.
#include "proxy/route_balancing.h"
#include "proxy/stream.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

void Stream::select_cluster() {
  const config::Route& r = *route_->config;
  lb_hash_.reset();
  if (!r.hash_policy.empty()) {
    HashInput in;
    in.request = req_;
    in.path = path_;
    in.source_ip = peer_ip_;
    in.random = info_->worker->random().next();
    HashResult h = compute_hash(r.hash_policy, in);
    lb_hash_ = h.hash;
    // A made-up affinity cookie goes to the client with the response.
    if (!h.set_cookie.empty()) add_response_header("set-cookie", h.set_cookie);
  }
  cluster_index_ = route_->weighted.empty()
                       ? route_->cluster
                       : route_->weighted.choose(lb_hash_, info_->worker->random().next());
}

upstream::Endpoint* Stream::choose_endpoint() {
  upstream::LbContext ctx;
  ctx.hash = lb_hash_;
  ctx.avoid = lb_avoid_;
  upstream::ClusterRuntime::Refusal why = upstream::ClusterRuntime::Refusal::kNone;
  upstream::Endpoint* e = cluster_->choose(ctx, why);
  if (e != nullptr) return e;
  cluster_.reset();
  if (why == upstream::ClusterRuntime::Refusal::kOverflow) {
    flags_ |= accesslog::kUpstreamOverflow;  // max_requests in flight
    local_reply(503, "upstream overflow\n", false);
  } else {
    flags_ |= accesslog::kNoHealthyUpstream;
    local_reply(503, "no healthy upstream\n", false);
  }
  return nullptr;
}

upstream::Endpoint* Stream::choose_hedge_endpoint() {
  upstream::LbContext ctx;
  ctx.hash = lb_hash_;
  const upstream::Host* first[] = {attempt_.endpoint()};
  if (first[0] != nullptr) ctx.avoid = first;
  upstream::ClusterRuntime::Refusal why = upstream::ClusterRuntime::Refusal::kNone;
  return cluster_->choose(ctx, why);
}

std::string_view Stream::cluster_name() const {
  if (route_ == nullptr) return {};
  const int i = cluster_index_ >= 0 ? cluster_index_ : route_->cluster;
  if (i < 0 || static_cast<size_t>(i) >= snapshot_->config->clusters.size()) {
    return route_->config->cluster;
  }
  return snapshot_->config->clusters[static_cast<size_t>(i)].name;
}

}  // namespace sidecar::proxy
