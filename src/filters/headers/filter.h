// The `headers` filter: adds and removes request and response fields.
#pragma once

#include <memory>

#include "filters/headers/config.h"
#include "http/filter.h"

namespace sidecar::filters::headers {

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) override;

 private:
  std::shared_ptr<const Config> config_;
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

}  // namespace sidecar::filters::headers
