// Config of the `credential_injector` filter (Envoy's
// envoy.filters.http.credential_injector; docs/security.md): on an outbound
// listener or route, the sidecar adds the credential the upstream wants, so
// the app holds none.
//
//   filters:
//     - name: credential_injector
//       config:
//         overwrite: false            # keep an Authorization the app sent (Envoy's default)
//         # one of:
//         bearer_from_file: { path: /var/run/secrets/tokens/partner }
//         basic_from_file: { path: /etc/partner/basic }        # "user:password"
//         header_from_file: { name: x-api-key, path: /etc/partner/key }
//         oauth2_client_credentials:
//           token_endpoint: { uri: "http://idp.example/oauth2/token", cluster: idp, timeout: 2s }
//           client_id: my-app
//           client_secret_file: /etc/partner/client-secret
//           scopes: [ read, write ]
//           audience: https://partner.example
//
// Per route (typed_per_filter_config): the same mapping, or { disabled: true }.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/registry.h"

namespace sidecar::filters::credential_injector {

struct Config {
  enum class Kind { kNone, kBearerFile, kBasicFile, kHeaderFile, kOAuth2 };
  Kind kind = Kind::kNone;
  bool disabled = false;
  bool overwrite = false;
  std::string header = "authorization";  // the field set
  std::string path;                      // the file (bearer, basic, header)
  // oauth2_client_credentials
  std::string token_cluster;
  std::string token_cluster_origin;
  std::string token_host;
  std::string token_path;
  config::Duration token_timeout{2000};
  std::string client_id;
  std::string client_secret_file;
  std::vector<std::string> scopes;
  std::string audience;
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::credential_injector
