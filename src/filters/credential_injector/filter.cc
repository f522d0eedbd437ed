#include "filters/credential_injector/filter.h"

namespace sidecar::filters::credential_injector {
namespace {

constexpr const char* kFamily = "sidecar_credential_injector_requests_total";
constexpr const char* kHelp = "Outbound requests seen by credential_injector, by result.";

}  // namespace

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      source(config->kind == Config::Kind::kNone ? nullptr : std::make_shared<Source>(*config)),
      injected(*counter(kFamily, kHelp, {{"result", "injected"}})),
      kept(*counter(kFamily, kHelp, {{"result", "kept"}})),
      unavailable(*counter(kFamily, kHelp, {{"result", "unavailable"}})) {}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  if (const auto* route = static_cast<const Config*>(cb.route_config("credential_injector"));
      (route != nullptr && route->disabled) || factory_->config->disabled || !factory_->source) {
    return http::FilterStatus::kContinue;
  }
  const Config& c = *factory_->config;
  if (!c.overwrite && cb.request().find(c.header) != nullptr) {
    factory_->kept.add();
    return http::FilterStatus::kContinue;
  }
  alive_ = std::make_shared<bool>(true);
  if (factory_->source->wait(cb.http_client(), cb.io(), [this, &cb, alive = alive_] {
        if (!*alive) return;
        if (inject(cb)) cb.continue_request();
      })) {
    return http::FilterStatus::kStopIteration;
  }
  return inject(cb) ? http::FilterStatus::kContinue : http::FilterStatus::kStopIteration;
}

bool Filter::inject(http::FilterCallbacks& cb) {
  std::string why;
  const std::string value = factory_->source->value(why);
  if (value.empty()) {
    factory_->unavailable.add();
    cb.set_response_detail("credential_injector_credential_unavailable");
    cb.send_local_reply(503, "credential_injector: no credential for the upstream: " + why + "\n");
    return false;
  }
  factory_->injected.add();
  cb.set_request_header(factory_->config->header, value);
  return true;
}

}  // namespace sidecar::filters::credential_injector
