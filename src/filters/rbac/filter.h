// The `rbac` filter: allows or denies requests by who sends them
// (principals) and what they ask for (permissions) (Envoy's
// envoy.filters.http.rbac; Istio's AuthorizationPolicy; docs/security.md).
//
// action ALLOW: a request passes when a policy matches; DENY: it is refused
// when one matches. A policy matches when any of its principals and any of
// its permissions match. For Istio's order (deny wins, then allow, default
// deny once any allow policy exists) chain two rbac filters: DENY, then
// ALLOW. Refused: 403 "RBAC: access denied", %RESPONSE_CODE_DETAILS%
// "rbac_access_denied_matched_policy[<policy>|none]",
// sidecar_rbac_denied_total{policy}. shadow_rules only count
// (sidecar_rbac_shadow_denied_total{policy}) and publish the metadata
// "rbac.shadow_effective_policy_id" and "rbac.shadow_engine_result"
// (allowed | denied).
//
// jwt_claim principals read the claims jwt_authn published
// ("jwt_authn.payload"): put rbac after jwt_authn.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <boost/json/object.hpp>

#include "filters/rbac/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::rbac {

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  FilterCounter& allowed;
  FilterCounter& shadow_allowed;
  // Counters of the listener's policies, looked up without the registry's lock.
  FilterCounter& denied(const Policy* policy) const;
  FilterCounter& shadow_denied(const Policy* policy) const;

 private:
  std::map<const Policy*, FilterCounter*> denied_, shadow_denied_;  // null key: "none"
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_stream_end() override { claims_.reset(); }

  // The policy that decides (ALLOW: the first that matches, DENY: the first
  // that matches), or null; `allowed` is the outcome. Exposed for tests.
  const Policy* evaluate(const Rules& rules, http::FilterCallbacks& cb, bool& allowed);

 private:
  bool matches(const Matcher& m, http::FilterCallbacks& cb, bool principal);
  const boost::json::object* claims(http::FilterCallbacks& cb);

  const std::shared_ptr<const Factory> factory_;
  std::optional<boost::json::object> claims_;  // parsed once per request, on first use
};

}  // namespace sidecar::filters::rbac
