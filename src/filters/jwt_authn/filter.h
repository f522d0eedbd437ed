// The `jwt_authn` filter: verifies JSON Web Tokens before the request goes
// upstream (Envoy's envoy.filters.http.jwt_authn; docs/security.md).
//
// For the first rule whose match fits the path (or the route's
// requirement_name), it extracts each provider's token, checks issuer,
// audiences, exp/nbf/iat and the signature, and evaluates the requirement.
// Passed: claims go to headers, the payload to `forward_payload_header` and
// to the stream metadata ("jwt_authn.payload": the payload JSON,
// "jwt_authn.principal": "iss/sub", for rbac), and the token is stripped
// unless `forward`. Refused: 401 with WWW-Authenticate (RFC 6750 3) for a
// missing or invalid token, 403 for a valid token that fails the route's
// audiences; %RESPONSE_CODE_DETAILS% is "jwt_authn_<reason>" and
// sidecar_jwt_authn_denied_total{reason} counts it. The token itself is
// never logged. Headers named by claim_to_headers and forward_payload_header
// are removed from the request first, so a client cannot set them itself.
//
// A provider with remote_jwks that has no keys yet (or sees an unknown kid)
// stops the request until its fetch ends (KeySource).
#pragma once

#include <memory>
#include <vector>

#include "filters/jwt_authn/config.h"
#include "filters/jwt_authn/jwt.h"
#include "filters/jwt_authn/key_source.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::jwt_authn {

// Built once per config snapshot; shared by workers.
class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  std::vector<std::shared_ptr<KeySource>> sources;  // by provider index
  FilterCounter& allowed;
  std::vector<FilterCounter*> denied;  // by JwtStatus
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  ~Filter() override;
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_stream_end() override;

 private:
  // A provider's token for this request.
  struct Token {
    bool evaluated = false;
    JwtStatus status = JwtStatus::kMissing;
    std::shared_ptr<const Jwt> jwt;  // shared with the verified-token cache
    int header = -1;                 // index into from_headers where it was found
    std::string param;               // or the query parameter
    bool from_cookie = false;
  };
  enum class Step { kDone, kPending };

  http::FilterStatus run(http::FilterCallbacks& cb);
  Step evaluate_provider(size_t index, http::FilterCallbacks& cb);
  void collect_providers(const Requirement& r, std::vector<bool>& used) const;
  JwtStatus check(const Requirement& r) const;
  void extract(const Provider& p, http::FilterCallbacks& cb, Token& t, std::string_view& raw) const;
  void accept(http::FilterCallbacks& cb);
  void refuse(http::FilterCallbacks& cb, JwtStatus status);

  const std::shared_ptr<const Factory> factory_;
  const Requirement* requirement_ = nullptr;
  std::vector<Token> tokens_;
  bool waited_ = false;
  std::shared_ptr<bool> alive_;
};

}  // namespace sidecar::filters::jwt_authn
