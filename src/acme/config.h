// The `acme:` section: certificates obtained and renewed over ACME
// [RFC 8555] and served on a TLS listener (docs/config.md "acme",
// docs/tls.md "ACME"). Parsed in the binary (this file is linked in; it needs
// yaml-cpp and tls/certificate for the `ca` check); the work is done by
// libsidecar-acme.so, loaded when a config has the section.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/reader.h"

namespace sidecar::acme {

using config::Duration;
using namespace std::chrono_literals;

inline constexpr const char* kLetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory";

struct AcmeConfig {
  std::string directory = kLetsEncrypt;  // https:// URL of the ACME directory
  std::string email;                     // account contact ("mailto:"); optional
  std::vector<std::string> domains;      // DNS names of one certificate; the first is its CN
  std::string storage;                   // absolute directory: account key, certificates
  std::string listener;                  // the TLS listener that serves the certificate
  std::string challenge = "http-01";     // the only type supported
  // The plain listener the ACME server reaches (port 80 in production); every
  // plain listener answers challenges, this one is checked to exist. "": the
  // plain listener on port 80 (the validator insists there is one).
  std::string challenge_listener;
  Duration renew_before = std::chrono::hours(24 * 30);  // or at 2/3 of the lifetime, if sooner
  std::string ca;                 // PEM file trusted for the directory; "": the OS bundle
  std::string key_type = "p256";  // the certificate's key: p256 | p384 | rsa2048 | rsa4096
  Duration timeout = 10min;       // one attempt: order to download
  Duration retry_base = 1min;     // retry_back_off.base_interval: first wait after a failure
  Duration retry_max = 1h;        // retry_back_off.max_interval: the longest wait
  // Positions for errors found by the validator ("FILE:LINE:COL").
  std::string origin;                     // the section
  std::string listener_origin;            // `listener`
  std::string challenge_listener_origin;  // `challenge_listener` (or the section)
  std::string ca_origin;
  bool operator==(const AcmeConfig&) const = default;
};

// The section's parser (config::Parser): returns an AcmeConfig.
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

// Whether `name` is a DNS name an ACME server can validate over HTTP-01:
// LDH labels of 1-63 bytes, at least two labels or "localhost", 253 bytes at
// most, no wildcard. `why` says what is wrong.
bool valid_domain(const std::string& name, std::string& why);

// Registers the module kind "acme" (module/module.h) and its validator: the
// listener must be a TLS listener, the challenge listener a plain one, the
// `ca` file must hold a certificate.
void register_module();

}  // namespace sidecar::acme
