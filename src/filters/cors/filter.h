// The `cors` filter: answers CORS preflights and decorates responses to
// allowed origins (Envoy's envoy.filters.http.cors; Fetch standard, "CORS
// protocol"; docs/security.md).
//
// A request without Origin passes untouched. A preflight (OPTIONS with
// Origin and Access-Control-Request-Method) from an allowed origin is
// answered here with 200 and the Access-Control-Allow-* fields; from another
// origin it goes on undecorated (the app may answer it; browsers refuse what
// is not allowed). Other requests from an allowed origin get
// Access-Control-Allow-Origin (the origin itself), -Allow-Credentials,
// -Expose-Headers and Vary: Origin on their response.
// sidecar_cors_requests_total{result="preflight|allowed|origin_not_allowed"}.
#pragma once

#include <memory>
#include <string>

#include "filters/cors/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::cors {

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  FilterCounter& preflight;
  FilterCounter& allowed;
  FilterCounter& not_allowed;
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) override;
  void on_stream_end() override {
    decorate_ = nullptr;
    origin_.clear();
  }

 private:
  const std::shared_ptr<const Factory> factory_;
  const Config* decorate_ = nullptr;  // the policy of an allowed actual request
  std::string origin_;
};

}  // namespace sidecar::filters::cors
