// `sidecar webhook`'s HTTPS transport: the handling of webhook.h behind TLS
// (OpenSSL 3 through Boost.Asio's ssl::stream, HTTP/1.1 with keep-alive,
// which the API server uses).
//
// The certificate and key files are checked every second (modification time,
// inode and size, following symlinks, so cert-manager's Secret volume swap is
// seen): a changed pair is loaded for new connections; a pair that does not
// load is logged and the previous one kept. This transport is self-contained
// (one .cc) so that it can move onto src/tls/ when that lands.
//
// Thread safety: run_webhook() owns its thread and returns when SIGTERM or
// SIGINT arrives.
#pragma once

#include <string>

#include "k8s/inject.h"

namespace sidecar::k8s {

struct WebhookOptions {
  std::string listen = "0.0.0.0:8443";  // HOST:PORT; port 0 picks one
  std::string cert_file;                // PEM chain, leaf first
  std::string key_file;                 // PEM private key
  std::string address_path;             // if set, the bound HOST:PORT is written here
  Options inject;
};

// Serves until SIGTERM/SIGINT. Returns 0, 64 for bad options (unreadable
// certificate, bad address) or 70 when the address cannot be bound.
int run_webhook(const WebhookOptions& options);

}  // namespace sidecar::k8s
