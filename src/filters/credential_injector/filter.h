// The `credential_injector` filter: adds the credential an upstream wants to
// the app's outbound requests (Envoy's credential_injector; docs/security.md).
//
// The app's own Authorization (or the configured field) is kept unless
// `overwrite`. No credential available (unreadable file, token endpoint
// failing): 503 with the reason in the body and %RESPONSE_CODE_DETAILS%
// "credential_injector_<why>", never a request without it.
// sidecar_credential_injector_requests_total{result="injected|kept|unavailable"}.
#pragma once

#include <memory>

#include "filters/credential_injector/config.h"
#include "filters/credential_injector/source.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::credential_injector {

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  const std::shared_ptr<Source> source;
  FilterCounter& injected;
  FilterCounter& kept;
  FilterCounter& unavailable;
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  ~Filter() override { on_stream_end(); }
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_stream_end() override {
    if (alive_) *alive_ = false;
    alive_.reset();
  }

 private:
  // Sets the credential or answers 503; true when the request goes on.
  bool inject(http::FilterCallbacks& cb);

  const std::shared_ptr<const Factory> factory_;
  std::shared_ptr<bool> alive_;
};

}  // namespace sidecar::filters::credential_injector
