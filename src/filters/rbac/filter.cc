#include "filters/rbac/filter.h"

#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "filters/jwt_authn/jwt.h"
#include "net/transport.h"

namespace sidecar::filters::rbac {
namespace {

FilterCounter& policy_counter(const std::string& family, const std::string& help,
                              const std::string& policy) {
  return *counter(family, help, {{"policy", policy}});
}

constexpr const char* kDenied = "sidecar_rbac_denied_total";
constexpr const char* kDeniedHelp = "Requests refused by rbac, by the policy that decided.";
constexpr const char* kShadow = "sidecar_rbac_shadow_denied_total";
constexpr const char* kShadowHelp =
    "Requests rbac's shadow_rules would have refused, by the policy that decided.";

// Every value of request field `name` (lower case) or of a pseudo-header.
template <typename F>
void header_values(http::FilterCallbacks& cb, const std::string& name, F each) {
  if (name == ":authority" || name == "host") {
    each(cb.authority());
  } else if (name == ":method") {
    each(cb.request().method_name);
  } else if (name == ":path") {
    each(cb.path());
  } else {
    for (const http::HeaderField& f : cb.request().headers) {
      if (f.name.size() != name.size()) continue;
      bool same = true;
      for (size_t i = 0; i < name.size() && same; ++i)
        same = std::tolower(static_cast<unsigned char>(f.name[i])) == name[i];
      if (same) each(f.value);
    }
  }
}

}  // namespace

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      allowed(*counter("sidecar_rbac_allowed_total", "Requests rbac let through.")),
      shadow_allowed(*counter("sidecar_rbac_shadow_allowed_total",
                              "Requests rbac's shadow_rules would have let through.")) {
  // Create the labelled counters now, so the data path never registers.
  denied_[nullptr] = &policy_counter(kDenied, kDeniedHelp, "none");
  shadow_denied_[nullptr] = &policy_counter(kShadow, kShadowHelp, "none");
  for (const Policy& p : config->rules.policies)
    denied_[&p] = &policy_counter(kDenied, kDeniedHelp, p.name);
  for (const Policy& p : config->shadow_rules.policies)
    shadow_denied_[&p] = &policy_counter(kShadow, kShadowHelp, p.name);
}

FilterCounter& Factory::denied(const Policy* p) const {
  auto it = denied_.find(p);
  // A route's own policies: looked up (rare: refusals on overridden routes).
  return it != denied_.end() ? *it->second : policy_counter(kDenied, kDeniedHelp, p->name);
}

FilterCounter& Factory::shadow_denied(const Policy* p) const {
  auto it = shadow_denied_.find(p);
  return it != shadow_denied_.end() ? *it->second : policy_counter(kShadow, kShadowHelp, p->name);
}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

const boost::json::object* Filter::claims(http::FilterCallbacks& cb) {
  if (!claims_) {
    claims_.emplace();
    if (auto payload = cb.metadata("jwt_authn.payload")) {
      boost::system::error_code ec;
      boost::json::value v = boost::json::parse(*payload, ec);
      if (!ec && v.is_object()) *claims_ = std::move(v.as_object());
    }
  }
  return &*claims_;
}

bool Filter::matches(const Matcher& m, http::FilterCallbacks& cb, bool principal) {
  switch (m.kind) {
    case Matcher::Kind::kAny:
      return true;
    case Matcher::Kind::kAnd:
      for (const Matcher& c : m.children) {
        if (!matches(c, cb, principal)) return false;
      }
      return true;
    case Matcher::Kind::kOr:
      for (const Matcher& c : m.children) {
        if (matches(c, cb, principal)) return true;
      }
      return false;
    case Matcher::Kind::kNot:
      return !m.children.empty() && !matches(m.children[0], cb, principal);
    case Matcher::Kind::kSourceIp:
      return m.cidr.contains(cb.peer_ip());
    case Matcher::Kind::kAuthenticated: {
      const net::TlsInfo* tls = cb.tls();
      if (tls == nullptr || tls->peer_cert_sha256.empty()) return false;
      if (!m.match) return true;
      for (const std::string& s : tls->peer_uri_sans) {
        if (m.match->matches(s)) return true;
      }
      for (const std::string& s : tls->peer_dns_sans) {
        if (m.match->matches(s)) return true;
      }
      return !tls->peer_subject.empty() && m.match->matches(tls->peer_subject);
    }
    case Matcher::Kind::kJwtClaim: {
      const boost::json::value* v = jwt_authn::find_claim(*claims(cb), m.name);
      if (v == nullptr) return false;
      if (m.match->kind == StringMatch::Kind::kPresent) return true;
      for (const std::string& s : jwt_authn::claim_strings(*v)) {
        if (m.match->matches(s)) return true;
      }
      return false;
    }
    case Matcher::Kind::kHeader: {
      bool found = false;
      header_values(cb, m.name,
                    [&](std::string_view value) { found = found || m.match->matches(value); });
      return found;
    }
    case Matcher::Kind::kMethods:
      for (const std::string& method : m.methods) {
        if (method == cb.request().method_name) return true;
      }
      return false;
    case Matcher::Kind::kUrlPath: {
      const std::string_view path = cb.path();
      return m.match->matches(path.substr(0, path.find('?')));
    }
    case Matcher::Kind::kDestinationPort:
      return cb.local_port() >= m.port_start && cb.local_port() < m.port_end;
  }
  return false;
}

const Policy* Filter::evaluate(const Rules& rules, http::FilterCallbacks& cb, bool& allowed) {
  for (const Policy& p : rules.policies) {
    bool who = false;
    for (const Matcher& m : p.principals) {
      if ((who = matches(m, cb, true))) break;
    }
    if (!who) continue;
    for (const Matcher& m : p.permissions) {
      if (matches(m, cb, false)) {
        allowed = rules.allow;
        return &p;
      }
    }
  }
  allowed = !rules.allow;
  return nullptr;
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  const Factory& f = *factory_;
  const Config* config = f.config.get();
  if (const auto* route = static_cast<const Config*>(cb.route_config("rbac"))) config = route;
  if (config->disabled) return http::FilterStatus::kContinue;
  if (config->shadow_rules.present) {
    bool allowed = true;
    const Policy* p = evaluate(config->shadow_rules, cb, allowed);
    const std::string name = p ? p->name : "none";
    cb.set_metadata("rbac.shadow_engine_result", allowed ? "allowed" : "denied");
    if (p != nullptr) cb.set_metadata("rbac.shadow_effective_policy_id", name);
    if (allowed) {
      f.shadow_allowed.add();
    } else {
      f.shadow_denied(p).add();
      spdlog::debug("rbac: shadow rules would deny {} {} (policy {})", cb.request().method_name,
                    cb.path().substr(0, cb.path().find('?')), name);
    }
  }
  if (!config->rules.present) return http::FilterStatus::kContinue;
  bool allowed = true;
  const Policy* p = evaluate(config->rules, cb, allowed);
  if (allowed) {
    f.allowed.add();
    return http::FilterStatus::kContinue;
  }
  const std::string name = p ? p->name : "none";
  f.denied(p).add();
  cb.set_response_detail("rbac_access_denied_matched_policy[" + name + "]");
  cb.send_local_reply(403, "RBAC: access denied\n");
  return http::FilterStatus::kStopIteration;
}

}  // namespace sidecar::filters::rbac
