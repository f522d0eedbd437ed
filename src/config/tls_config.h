// Parsers of `listeners[].tls` and `clusters[].tls` (docs/tls.md). Only the
// shape is checked here; src/tls reads and checks the files (a validator).
#pragma once

#include <string>

#include "config/reader.h"

namespace sidecar::config {

void load_server_tls(Reader& r, const YAML::Node& n, const std::string& where, ServerTls& tls);
void load_client_tls(Reader& r, const YAML::Node& n, const std::string& where, ClientTls& tls);
// `forward_client_cert` of a listener.
void load_forward_client_cert(Reader& r, const YAML::Node& n, const std::string& where,
                              ForwardClientCert& out);

}  // namespace sidecar::config
