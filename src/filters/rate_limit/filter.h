// The `rate_limit` filter: global limits in Redis, asked asynchronously.
//
// A request matching descriptors is paused (kStopIteration) while one
// EVALSHA per descriptor goes to Redis on the worker's connection
// (pipelined); the answers, or the `timeout`, decide: admitted (the chain
// continues), limited (429 with Retry-After and the RateLimit fields, flag
// RL, detail "rate_limited"), or Redis failed (failure_mode_deny: 500,
// detail "rate_limit_service_error"; else admitted, counted as an error).
#pragma once

#include <memory>

#include "filters/rate_limit/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::rate_limit {

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  ~Filter() override;
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_stream_end() override;

 private:
  struct Pending;  // one request's outstanding Redis calls and its timer
  struct CallState;
  static void send(std::shared_ptr<CallState> s);
  void finish(Pending& p);

  std::shared_ptr<const Config> config_;
  std::shared_ptr<Pending> pending_;
  RouteCounter allowed_{"sidecar_rate_limit_requests_total",
                        "Requests checked by rate_limit (Redis), by result.", "result", "allowed"};
  RouteCounter limited_{"sidecar_rate_limit_requests_total",
                        "Requests checked by rate_limit (Redis), by result.", "result", "limited"};
  RouteCounter errors_{"sidecar_rate_limit_requests_total",
                       "Requests checked by rate_limit (Redis), by result.", "result", "error"};
};

class Factory : public http::HttpFilterFactory {
 public:
  // Computes the script's digest here, on the main thread: it loads
  // libsidecar-crypto.so, which a worker must not do on its first request.
  explicit Factory(std::shared_ptr<const Config> config) : config_(std::move(config)) {
    script_sha1();
  }
  std::unique_ptr<http::HttpFilter> create() const override {
    return std::make_unique<Filter>(config_);
  }

 private:
  std::shared_ptr<const Config> config_;
};

}  // namespace sidecar::filters::rate_limit
