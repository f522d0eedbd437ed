#include "filters/cors/filter.h"

namespace sidecar::filters::cors {
namespace {

constexpr const char* kFamily = "sidecar_cors_requests_total";
constexpr const char* kHelp = "Cross-origin requests seen by cors, by result.";

bool allowed_origin(const Config& c, std::string_view origin) {
  for (const StringMatch& m : c.allow_origins) {
    if ((m.kind == StringMatch::Kind::kExact && m.value == "*") || m.matches(origin)) return true;
  }
  return false;
}

}  // namespace

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      preflight(*counter(kFamily, kHelp, {{"result", "preflight"}})),
      allowed(*counter(kFamily, kHelp, {{"result", "allowed"}})),
      not_allowed(*counter(kFamily, kHelp, {{"result", "origin_not_allowed"}})) {}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  decorate_ = nullptr;
  const Config* c = factory_->config.get();
  if (const auto* route = static_cast<const Config*>(cb.route_config("cors"))) c = route;
  if (c->disabled) return http::FilterStatus::kContinue;
  const http::HeaderField* origin = cb.request().find("origin");
  if (origin == nullptr) return http::FilterStatus::kContinue;
  if (!allowed_origin(*c, origin->value)) {
    factory_->not_allowed.add();
    return http::FilterStatus::kContinue;
  }
  origin_ = std::string(origin->value);
  if (cb.request().method == http::Method::kOptions &&
      cb.request().find("access-control-request-method") != nullptr) {
    factory_->preflight.add();
    http::LocalResponse r;
    r.status = 200;
    r.headers.emplace_back("access-control-allow-origin", origin_);
    if (!c->allow_methods.empty())
      r.headers.emplace_back("access-control-allow-methods", c->allow_methods);
    if (!c->allow_headers.empty())
      r.headers.emplace_back("access-control-allow-headers", c->allow_headers);
    if (!c->max_age.empty()) r.headers.emplace_back("access-control-max-age", c->max_age);
    if (c->allow_credentials) r.headers.emplace_back("access-control-allow-credentials", "true");
    r.headers.emplace_back("vary", "Origin");
    cb.set_response_detail("cors_preflight");
    cb.send_response(std::move(r));
    return http::FilterStatus::kStopIteration;
  }
  factory_->allowed.add();
  decorate_ = c;
  return http::FilterStatus::kContinue;
}

void Filter::on_response_headers(const http::ResponseHead&, http::FilterCallbacks& cb) {
  if (decorate_ == nullptr) return;
  cb.set_response_header("access-control-allow-origin", origin_);
  if (decorate_->allow_credentials)
    cb.set_response_header("access-control-allow-credentials", "true");
  if (!decorate_->expose_headers.empty())
    cb.set_response_header("access-control-expose-headers", decorate_->expose_headers);
  cb.add_response_header("vary", "Origin");
}

}  // namespace sidecar::filters::cors
