// The `local_rate_limit` filter: token buckets shared by all workers,
// answered with 429 (or `status`), Retry-After and the RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-09 when a bucket is empty.
#pragma once

#include <memory>
#include <string>

#include "filters/local_rate_limit/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::local_rate_limit {

// The client address a descriptor keyed by client_ip counts: with
// `trusted_hops` N > 0 the N-th address from the right of X-Forwarded-For
// (the one the closest trusted proxy saw), else the connection's peer.
std::string_view client_ip(const http::RequestHead& head, std::string_view peer,
                           uint32_t trusted_hops);

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) override;
  void on_stream_end() override { headers_.clear(); }

 private:
  std::shared_ptr<const Config> config_;
  std::string headers_;  // rate_limit_headers: "policy\nstate" for the response
  RouteCounter allowed_{"sidecar_local_rate_limit_requests_total",
                        "Requests checked by local_rate_limit, by result.", "result", "allowed"};
  RouteCounter limited_{"sidecar_local_rate_limit_requests_total",
                        "Requests checked by local_rate_limit, by result.", "result", "limited"};
};

class Factory : public http::HttpFilterFactory {
 public:
  explicit Factory(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  std::unique_ptr<http::HttpFilter> create() const override {
    return std::make_unique<Filter>(config_);
  }

 private:
  std::shared_ptr<const Config> config_;
};

}  // namespace sidecar::filters::local_rate_limit
