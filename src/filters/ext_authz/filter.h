// The `ext_authz` filter: asks an authorization service over HTTP whether a
// request may go on (Envoy's HTTP ext_authz; docs/security.md).
//
// The check request has the request's method, path_prefix + its path, its
// Host, Authorization and the allowed_headers, plus headers_to_add; no
// body, or with with_request_body the request's body (its first
// max_request_bytes with allow_partial_message, and then
// `x-envoy-auth-partial-body: true`, as Envoy; a longer body is answered
// 413 otherwise, "ext_authz_body_too_large"); it goes to `cluster` through the worker's AsyncClient
// with `timeout`. 200: the request goes on, with the allowed_upstream_headers of the answer.
// Another status: that status and body go to the client, with the allowed_client_headers; the
// upstream never sees the request
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
  void on_request_body_buffered(std::string_view body, bool complete,
                                http::FilterCallbacks& cb) override;
  void on_stream_end() override;

 private:
  // Sends the check request (with `body`, possibly the first bytes only).
  void check(http::FilterCallbacks& cb, std::string_view body, bool partial);
  // 413: the body is longer than max_request_bytes, without allow_partial_message.
  void too_large(http::FilterCallbacks& cb);
  void answered(http::FilterCallbacks& cb, http::ClientResponse response);

  const std::shared_ptr<const Factory> factory_;
  std::shared_ptr<bool> alive_;
  uint64_t handle_ = 0;
  http::AsyncClient* client_ = nullptr;
};

}  // namespace sidecar::filters::ext_authz
