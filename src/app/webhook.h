// `sidecar webhook`: the mutating admission webhook (docs/kubernetes.md).
// The handling is k8s/webhook.h (the same code as `sidecar inject`); this
// is its HTTPS server: the admin server over the TLS transport, with the
// certificate files watched by the TLS store (cert-manager's renewals are
// served without a restart).
#pragma once

#include <string>

#include "k8s/inject.h"

namespace sidecar::app {

struct WebhookOptions {
  std::string listen = "0.0.0.0:8443";  // HOST:PORT; port 0 picks one
  std::string cert_file;                // PEM chain, leaf first (watched)
  std::string key_file;                 // PEM private key (watched)
  std::string address_path;             // if set, the bound HOST:PORT is written here
  k8s::Options inject;
};

// Serves POST /inject, GET /ready and /healthz until SIGTERM/SIGINT.
// Returns 0, 64 for bad options (bad address, a certificate that does not
// load) or 70 when the address cannot be bound.
int run_webhook(const WebhookOptions& options);

}  // namespace sidecar::app
