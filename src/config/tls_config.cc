#include "config/tls_config.h"

#include <fmt/format.h>

namespace sidecar::config {
namespace {

void load_alpn(Reader& r, const YAML::Node& n, const std::string& what,
               std::vector<std::string>& out) {
  if (!r.get_strings(n, what, out)) return;
  for (const std::string& p : out) {
    if (p.empty() || p.size() > 255) r.error(n, what + ": a protocol name is 1 to 255 bytes");
  }
  if (out.empty()) r.error(n, what + " must not be empty");
}

void load_min_version(Reader& r, const YAML::Node& n, const std::string& what, std::string& out) {
  r.get_enum(n, what, out, {"1.2", "1.3"});
}

}  // namespace

void load_server_tls(Reader& r, const YAML::Node& n, const std::string& where, ServerTls& tls) {
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"certificates", "min_version", "cipher_suites", "alpn", "client_ca",
                "require_client_cert", "verify_client_san", "session_tickets"});
  tls.enabled = true;
  tls.origin = r.origin(n);
  if (auto v = n["certificates"]) {
    if (r.is_seq(v, where + ".certificates")) {
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string cw = fmt::format("{}.certificates[{}]", where, i);
        if (!r.is_map(v[i], cw)) continue;
        r.check_keys(v[i], cw, {"cert", "key"});
        CertificateFiles f;
        f.origin = r.origin(v[i]);
        if (auto c = v[i]["cert"]) {
          r.get_string(c, cw + ".cert", f.cert);
        } else {
          r.error(v[i], cw + " needs a cert (PEM file)");
        }
        if (auto k = v[i]["key"]) {
          r.get_string(k, cw + ".key", f.key);
        } else {
          r.error(v[i], cw + " needs a key (PEM file)");
        }
        tls.certificates.push_back(std::move(f));
      }
    }
  }
  if (auto v = n["min_version"]) load_min_version(r, v, where + ".min_version", tls.min_version);
  if (auto v = n["cipher_suites"]) r.get_strings(v, where + ".cipher_suites", tls.cipher_suites);
  if (auto v = n["alpn"]) load_alpn(r, v, where + ".alpn", tls.alpn);
  if (auto v = n["client_ca"]) r.get_string(v, where + ".client_ca", tls.client_ca);
  if (auto v = n["require_client_cert"]) {
    r.get_bool(v, where + ".require_client_cert", tls.require_client_cert);
    if (tls.client_ca.empty()) r.error(v, where + ".require_client_cert needs client_ca");
  }
  if (auto v = n["verify_client_san"]) {
    r.get_strings(v, where + ".verify_client_san", tls.verify_client_san);
    if (tls.client_ca.empty()) r.error(v, where + ".verify_client_san needs client_ca");
  }
  if (auto v = n["session_tickets"]) r.get_bool(v, where + ".session_tickets", tls.session_tickets);
}

void load_client_tls(Reader& r, const YAML::Node& n, const std::string& where, ClientTls& tls) {
  if (!r.is_map(n, where)) return;
  r.check_keys(
      n, where,
      {"sni", "ca", "verify_san", "cert", "key", "insecure_skip_verify", "alpn", "min_version"});
  tls.enabled = true;
  tls.origin = r.origin(n);
  if (auto v = n["sni"]) r.get_string(v, where + ".sni", tls.sni);
  if (auto v = n["ca"]) {
    if (r.get_string(v, where + ".ca", tls.ca) && tls.ca.empty()) {
      r.error(v, where + ".ca must be system or a PEM file");
    }
  }
  if (auto v = n["verify_san"]) r.get_strings(v, where + ".verify_san", tls.verify_san);
  if (auto v = n["cert"]) r.get_string(v, where + ".cert", tls.cert);
  if (auto v = n["key"]) r.get_string(v, where + ".key", tls.key);
  if (tls.cert.empty() != tls.key.empty()) {
    r.error(n, where + " takes cert and key together (a client certificate needs its key)");
  }
  if (auto v = n["insecure_skip_verify"]) {
    r.get_bool(v, where + ".insecure_skip_verify", tls.insecure_skip_verify);
  }
  if (auto v = n["alpn"]) load_alpn(r, v, where + ".alpn", tls.alpn);
  if (auto v = n["min_version"]) load_min_version(r, v, where + ".min_version", tls.min_version);
}

void load_forward_client_cert(Reader& r, const YAML::Node& n, const std::string& where,
                              ForwardClientCert& out) {
  std::string s;
  if (!r.get_enum(n, where, s, {"sanitize", "append_forward", "sanitize_set"})) return;
  out = s == "sanitize"         ? ForwardClientCert::kSanitize
        : s == "append_forward" ? ForwardClientCert::kAppendForward
                                : ForwardClientCert::kSanitizeSet;
}

}  // namespace sidecar::config
