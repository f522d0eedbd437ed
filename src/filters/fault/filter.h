// The `fault` filter: delays requests (then lets them go on) and aborts
// them with a status, by percentage or by request header, at most
// `max_active_faults` at a time across all workers. Response flags DI and
// FI; %RESPONSE_CODE_DETAILS% "fault_filter_abort".
#pragma once

#include <memory>

#include "filters/fault/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::fault {

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Config> config);
  ~Filter() override;
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_stream_end() override;

 private:
  struct Pending;  // a delay in progress (the timer; Boost stays out of this header)
  // Aborts the request if the abort fault applies; false otherwise.
  bool maybe_abort(const Config& c, http::FilterCallbacks& cb);

  std::shared_ptr<const Config> config_;
  std::shared_ptr<Pending> pending_;
  RouteCounter delays_{"sidecar_fault_injected_total", "Faults injected, by kind.", "kind",
                       "delay"};
  RouteCounter aborts_{"sidecar_fault_injected_total", "Faults injected, by kind.", "kind",
                       "abort"};
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

}  // namespace sidecar::filters::fault
