// The `ext_authz` filter: asks an authorization service over HTTP whether a
// request may go on (Envoy's HTTP ext_authz; docs/security.md).
//
// The check request has the request's method, path_prefix + its path, its
// Host, Authorization and the allowed_headers, plus headers_to_add, and no
// body; it goes to `cluster` through the worker's AsyncClient with
// `timeout`. 200: the request goes on, with the allowed_upstream_headers of
// the answer. Another status: that status and body go to the client, with
// the allowed_client_headers; the upstream never sees the request
// (%RESPONSE_CODE_DETAILS% "ext_authz_denied"). No answer (timeout,
// connect failure): status_on_error (403) and "ext_authz_error", or the
// request goes on when failure_mode_allow. Counted in
// sidecar_ext_authz_requests_total{result="ok|denied|error|failure_mode_allowed"}.
#pragma once

#include <memory>

#include "filters/ext_authz/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::ext_authz {

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  FilterCounter& ok;
  FilterCounter& denied;
  FilterCounter& error;
  FilterCounter& failure_mode_allowed;
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  ~Filter() override { on_stream_end(); }
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_stream_end() override;

 private:
  void answered(http::FilterCallbacks& cb, http::ClientResponse response);

  const std::shared_ptr<const Factory> factory_;
  std::shared_ptr<bool> alive_;
  uint64_t handle_ = 0;
  http::AsyncClient* client_ = nullptr;
};

}  // namespace sidecar::filters::ext_authz
