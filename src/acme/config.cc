#include "acme/config.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "config/loader.h"
#include "module/module.h"

namespace sidecar::acme {
namespace {

// A duration, or a number of days ("30d": certificate lifetimes are counted
// in days, as in Caddy and Certbot).
bool get_long_duration(config::Reader& r, const YAML::Node& n, std::string_view what,
                       Duration& out) {
  if (!r.is_scalar(n, what)) return false;
  const std::string& s = n.Scalar();
  if (s.size() > 1 && s.back() == 'd') {
    double days = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size() - 1, days);
    if (ec == std::errc() && p == s.data() + s.size() - 1 && days >= 0 && days <= 3650) {
      out = Duration(std::llround(days * 86'400'000));
      return true;
    }
    r.error(n, fmt::format("{}: invalid duration '{}' (expected 30d, 720h, 90m ...)", what, s));
    return false;
  }
  return r.get_duration(n, what, out);
}

void load_retry(config::Reader& r, const YAML::Node& n, AcmeConfig& c) {
  if (!r.is_map(n, "acme.retry_back_off")) return;
  r.check_keys(n, "acme.retry_back_off", {"base_interval", "max_interval"});
  if (auto v = n["base_interval"]) {
    if (r.get_duration(v, "acme.retry_back_off.base_interval", c.retry_base) &&
        c.retry_base.count() == 0) {
      r.error(v, "acme.retry_back_off.base_interval must be more than 0");
    }
  }
  if (auto v = n["max_interval"])
    r.get_duration(v, "acme.retry_back_off.max_interval", c.retry_max);
  if (c.retry_max < c.retry_base) {
    r.error(n, "acme.retry_back_off.max_interval must not be less than base_interval");
  }
}

}  // namespace

bool valid_domain(const std::string& name, std::string& why) {
  if (name.empty() || name.size() > 253) {
    why = "must be 1 to 253 characters";
    return false;
  }
  if (name.starts_with("*.")) {
    why = "is a wildcard, which needs the dns-01 challenge (only http-01 is supported)";
    return false;
  }
  size_t labels = 0, start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const std::string_view label(name.data() + start, dot - start);
    if (label.empty() || label.size() > 63) {
      why = "has an empty label or one longer than 63 characters";
      return false;
    }
    for (char ch : label) {
      const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
      if (!ok) {
        why = (ch >= 'A' && ch <= 'Z') ? "must be lower case"
                                       : "may hold only letters, digits, '-' and '.'";
        return false;
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      why = "has a label that starts or ends with '-'";
      return false;
    }
    ++labels;
    start = dot + 1;
  }
  const std::string_view last(name.data() + name.rfind('.') + 1);
  if (last.find_first_not_of("0123456789") == std::string_view::npos) {
    why = "looks like an IP address (only DNS names are supported)";
    return false;
  }
  if (labels < 2 && name != "localhost") {
    why = "must be a fully qualified name (a.example.com)";
    return false;
  }
  return true;
}

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& r) {
  auto c = std::make_shared<AcmeConfig>();
  c->origin = r.origin(node);
  c->challenge_listener_origin = c->origin;
  if (!r.is_map(node, "acme")) return c;
  r.check_keys(
      node, "acme",
      {"directory", "email", "domains", "storage", "listener", "challenge", "challenge_listener",
       "renew_before", "ca", "key_type", "timeout", "retry_back_off"});
  if (auto v = node["directory"]) {
    if (r.get_string(v, "acme.directory", c->directory) && !c->directory.starts_with("https://")) {
      r.error(v, "acme.directory must be an https:// URL [RFC 8555 6.1]");
    }
  }
  if (auto v = node["email"]) {
    if (r.get_string(v, "acme.email", c->email) &&
        (c->email.find('@') == std::string::npos ||
         c->email.find_first_of(" ,<>") != std::string::npos)) {
      r.error(v, "acme.email must be one address (ops@example.com)");
    }
  }
  if (auto v = node["domains"]) {
    if (r.get_strings(v, "acme.domains", c->domains)) {
      if (c->domains.empty()) r.error(v, "acme.domains must name at least one domain");
      if (c->domains.size() > 100) r.error(v, "acme.domains may name at most 100 domains");
      for (size_t i = 0; i < c->domains.size(); ++i) {
        std::string why;
        const YAML::Node at = v.IsSequence() ? v[i] : v;
        if (!valid_domain(c->domains[i], why)) {
          r.error(at, fmt::format("acme.domains[{}] '{}' {}", i, c->domains[i], why));
        }
        for (size_t k = 0; k < i; ++k) {
          if (c->domains[k] == c->domains[i]) {
            r.error(at, fmt::format("acme.domains: '{}' is given twice", c->domains[i]));
          }
        }
      }
    }
  } else {
    r.error(node, "acme needs domains");
  }
  if (auto v = node["storage"]) {
    if (r.get_string(v, "acme.storage", c->storage) &&
        (c->storage.empty() || c->storage[0] != '/')) {
      r.error(v, "acme.storage must be an absolute path");
    }
  } else {
    r.error(node, "acme needs storage (a directory that survives restarts)");
  }
  if (auto v = node["listener"]) {
    r.get_string(v, "acme.listener", c->listener);
    c->listener_origin = r.origin(v);
  } else {
    r.error(node, "acme needs listener (the TLS listener that serves the certificate)");
  }
  if (auto v = node["challenge"]) r.get_enum(v, "acme.challenge", c->challenge, {"http-01"});
  if (auto v = node["challenge_listener"]) {
    r.get_string(v, "acme.challenge_listener", c->challenge_listener);
    c->challenge_listener_origin = r.origin(v);
  }
  if (auto v = node["renew_before"]) {
    if (get_long_duration(r, v, "acme.renew_before", c->renew_before) &&
        c->renew_before.count() == 0) {
      r.error(v, "acme.renew_before must be more than 0");
    }
  }
  if (auto v = node["ca"]) {
    r.get_string(v, "acme.ca", c->ca);
    c->ca_origin = r.origin(v);
  }
  if (auto v = node["key_type"]) {
    r.get_enum(v, "acme.key_type", c->key_type, {"p256", "p384", "rsa2048", "rsa4096"});
  }
  if (auto v = node["timeout"]) {
    if (r.get_duration(v, "acme.timeout", c->timeout) && c->timeout < 1s) {
      r.error(v, "acme.timeout must be at least 1s");
    }
  }
  if (auto v = node["retry_back_off"]) load_retry(r, v, *c);
  return c;
}

void register_module() {
  module::register_kind({"acme", parse, nullptr});
  config::register_validator("acme", [](const config::Config& c, std::vector<std::string>& errors) {
    auto a = c.section_as<AcmeConfig>("acme");
    if (a == nullptr) return;
    const config::Listener* l = c.find_listener(a->listener);
    if (l == nullptr) {
      errors.push_back(
          fmt::format("{}: acme.listener: no listener '{}'", a->listener_origin, a->listener));
    } else if (!l->tls.enabled) {
      errors.push_back(fmt::format(
          "{}: acme.listener: listener '{}' has no tls (the certificate is served by TLS)",
          a->listener_origin, a->listener));
    }
    // Only the ACME listener may be a TLS listener without certificates
    // (the TLS validator lets every such listener pass once `acme` exists).
    for (size_t i = 0; i < c.listeners.size(); ++i) {
      const config::Listener& t = c.listeners[i];
      if (t.tls.enabled && t.tls.certificates.empty() && t.name != a->listener) {
        errors.push_back(fmt::format(
            "{}: listeners[{}].tls needs certificates (acme serves listener '{}', not '{}')",
            t.tls.origin, i, a->listener, t.name));
      }
    }
    if (a->challenge_listener.empty()) {
      const config::Listener* on80 = nullptr;
      for (const config::Listener& p : c.listeners) {
        if (!p.tls.enabled && p.address.port == 80) on80 = &p;
      }
      if (on80 == nullptr) {
        errors.push_back(fmt::format(
            "{}: acme needs challenge_listener: a plain (non-TLS) listener on port 80 that the "
            "ACME server reaches for http-01, and there is none on port 80",
            a->challenge_listener_origin));
      }
    } else if (const config::Listener* p = c.find_listener(a->challenge_listener); p == nullptr) {
      errors.push_back(fmt::format("{}: acme.challenge_listener: no listener '{}'",
                                   a->challenge_listener_origin, a->challenge_listener));
    } else if (p->tls.enabled) {
      errors.push_back(fmt::format(
          "{}: acme.challenge_listener: listener '{}' has tls; http-01 is answered on a plain "
          "HTTP listener [RFC 8555 8.3]",
          a->challenge_listener_origin, a->challenge_listener));
    }
    if (!a->ca.empty()) {
      // A light check (OpenSSL is not mapped here): libcurl reads it for real.
      std::ifstream in(a->ca, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      if (!in) {
        errors.push_back(fmt::format("{}: acme.ca: cannot read {}: {}", a->ca_origin, a->ca,
                                     std::strerror(errno)));
      } else if (text.str().find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
        errors.push_back(
            fmt::format("{}: acme.ca: {} holds no PEM certificate", a->ca_origin, a->ca));
      }
    }
  });
}

}  // namespace sidecar::acme
