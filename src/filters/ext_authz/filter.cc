#include "filters/ext_authz/filter.h"

#include <string>

namespace sidecar::filters::ext_authz {
namespace {

constexpr const char* kFamily = "sidecar_ext_authz_requests_total";
constexpr const char* kHelp = "Authorization checks of ext_authz, by result.";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool any_match(const std::vector<StringMatch>& patterns, std::string_view name) {
  for (const StringMatch& m : patterns) {
    if (m.matches(name)) return true;
  }
  return false;
}

// Fields that describe one hop or the framing: never copied between messages.
bool hop_field(std::string_view n) {
  return n == "connection" || n == "keep-alive" || n == "transfer-encoding" ||
         n == "content-length" || n == "upgrade" || n == "te" || n == "trailer" ||
         n == "proxy-connection" || n == "host" || n == "expect";
}

}  // namespace

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      ok(*counter(kFamily, kHelp, {{"result", "ok"}})),
      denied(*counter(kFamily, kHelp, {{"result", "denied"}})),
      error(*counter(kFamily, kHelp, {{"result", "error"}})),
      failure_mode_allowed(*counter(kFamily, kHelp, {{"result", "failure_mode_allowed"}})) {}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

void Filter::on_stream_end() {
  if (alive_) *alive_ = false;
  alive_.reset();
  if (handle_ != 0 && client_ != nullptr) client_->cancel(handle_);
  handle_ = 0;
  client_ = nullptr;
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  if (const auto* route = static_cast<const Config*>(cb.route_config("ext_authz"));
      route != nullptr && route->disabled) {
    return http::FilterStatus::kContinue;
  }
  const Config& c = *factory_->config;
  const http::RequestHead& r = cb.request();
  if (c.with_request_body && r.body != http::BodyKind::kNone) {
    if (!c.allow_partial_message && r.body == http::BodyKind::kContentLength &&
        r.content_length > c.max_request_bytes) {
      too_large(cb);
      return http::FilterStatus::kStopIteration;
    }
    cb.buffer_request_body(c.max_request_bytes);
    return http::FilterStatus::kStopIteration;
  }
  check(cb, {}, false);
  return http::FilterStatus::kStopIteration;
}

void Filter::too_large(http::FilterCallbacks& cb) {
  factory_->denied.add();
  cb.set_response_detail("ext_authz_body_too_large");
  cb.send_local_reply(413, "ext_authz: request body too large\n");
}

void Filter::on_request_body_buffered(std::string_view body, bool complete,
                                      http::FilterCallbacks& cb) {
  if (!complete && !factory_->config->allow_partial_message) {
    too_large(cb);
    return;
  }
  check(cb, body, !complete);
}

void Filter::check(http::FilterCallbacks& cb, std::string_view body, bool partial) {
  const Config& c = *factory_->config;
  http::ClientRequest check;
  check.method = std::string(cb.request().method_name);
  check.path = c.path_prefix + std::string(cb.path());
  check.authority = std::string(cb.authority());
  check.timeout = c.timeout;
  for (const http::HeaderField& f : cb.request().headers) {
    const std::string name = lower(f.name);
    if (hop_field(name)) continue;
    if (name == "authorization" || any_match(c.allowed_headers, name))
      check.headers.emplace_back(name, std::string(f.value));
  }
  for (const auto& [k, v] : c.headers_to_add) check.headers.emplace_back(k, v);
  if (c.with_request_body) {
    check.body.assign(body);
    check.headers.emplace_back("x-envoy-auth-partial-body", partial ? "true" : "false");
  }
  alive_ = std::make_shared<bool>(true);
  client_ = &cb.http_client();
  handle_ = client_->send(c.cluster, std::move(check),
                          [this, &cb, alive = alive_](http::ClientResponse response) {
                            if (!*alive) return;
                            handle_ = 0;
                            answered(cb, std::move(response));
                          });
}

void Filter::answered(http::FilterCallbacks& cb, http::ClientResponse response) {
  const Config& c = *factory_->config;
  const Factory& f = *factory_;
  if (response.status == 200) {
    f.ok.add();
    for (const auto& [name, value] : response.headers) {
      if (!hop_field(name) && any_match(c.allowed_upstream_headers, name))
        cb.set_request_header(name, value);
    }
    cb.continue_request();
    return;
  }
  if (response.status == 0) {
    if (c.failure_mode_allow) {
      f.failure_mode_allowed.add();
      cb.continue_request();
      return;
    }
    f.error.add();
    cb.set_response_detail("ext_authz_error");
    cb.send_local_reply(c.status_on_error, "ext_authz: the authorization service did not answer\n");
    return;
  }
  f.denied.add();
  cb.set_response_detail("ext_authz_denied");
  http::LocalResponse r;
  r.status = response.status;
  for (auto& [name, value] : response.headers) {
    if (hop_field(name)) continue;
    if (c.allowed_client_headers.empty() || any_match(c.allowed_client_headers, name) ||
        name == "content-type")
      r.headers.emplace_back(name, std::move(value));
  }
  r.body = std::move(response.body);
  cb.send_response(std::move(r));
}

}  // namespace sidecar::filters::ext_authz
