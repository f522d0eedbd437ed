#include "filters/registry.h"

#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>

#include "config/registry.h"
#include "filters/api_key/filter.h"
#include "filters/basic_auth/filter.h"
#include "filters/cache/filter.h"
#include "filters/compressor/filter.h"
#include "filters/cors/filter.h"
#include "filters/credential_injector/filter.h"
#include "filters/decompressor/filter.h"
#include "filters/ext_authz/filter.h"
#include "filters/fault/filter.h"
#include "filters/grpc_web/filter.h"
#include "filters/headers/filter.h"
#include "filters/jwt_authn/filter.h"
#include "filters/local_rate_limit/filter.h"
#include "filters/rate_limit/filter.h"
#include "filters/rbac/filter.h"

namespace sidecar::filters {
namespace {

struct Entry {
  config::Parser parse;
  std::function<std::shared_ptr<const http::HttpFilterFactory>(std::shared_ptr<const void>)> make;
};

// Every built-in filter, by its config name.
const std::map<std::string, Entry>& builtin() {
  static const std::map<std::string, Entry> filters = {
      {"api_key",
       {api_key::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<api_key::Factory>(
              std::static_pointer_cast<const api_key::Config>(std::move(typed)));
        }}},
      {"basic_auth",
       {basic_auth::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<basic_auth::Factory>(
              std::static_pointer_cast<const basic_auth::Config>(std::move(typed)));
        }}},
      {"cache",
       {cache::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<cache::Factory>(
              std::static_pointer_cast<const cache::Config>(std::move(typed)));
        }}},
      {"cors",
       {cors::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<cors::Factory>(
              std::static_pointer_cast<const cors::Config>(std::move(typed)));
        }}},
      {"credential_injector",
       {credential_injector::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<credential_injector::Factory>(
              std::static_pointer_cast<const credential_injector::Config>(std::move(typed)));
        }}},
      {"ext_authz",
       {ext_authz::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<ext_authz::Factory>(
              std::static_pointer_cast<const ext_authz::Config>(std::move(typed)));
        }}},
      {"grpc_web",
       {grpc_web::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<grpc_web::Factory>(
              std::static_pointer_cast<const grpc_web::Config>(std::move(typed)));
        }}},
      {"headers",
       {headers::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<headers::Factory>(
              std::static_pointer_cast<const headers::Config>(std::move(typed)));
        }}},
      {"local_rate_limit",
       {local_rate_limit::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<local_rate_limit::Factory>(
              std::static_pointer_cast<const local_rate_limit::Config>(std::move(typed)));
        }}},
      {"compressor",
       {compressor::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<compressor::Factory>(
              std::static_pointer_cast<const compressor::Config>(std::move(typed)));
        }}},
      {"decompressor",
       {decompressor::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<decompressor::Factory>(
              std::static_pointer_cast<const decompressor::Config>(std::move(typed)));
        }}},
      {"fault",
       {fault::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<fault::Factory>(
              std::static_pointer_cast<const fault::Config>(std::move(typed)));
        }}},
      {"rate_limit",
       {rate_limit::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<rate_limit::Factory>(
              std::static_pointer_cast<const rate_limit::Config>(std::move(typed)));
        }}},
      {"jwt_authn",
       {jwt_authn::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<jwt_authn::Factory>(
              std::static_pointer_cast<const jwt_authn::Config>(std::move(typed)));
        }}},
      {"rbac",
       {rbac::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<rbac::Factory>(
              std::static_pointer_cast<const rbac::Config>(std::move(typed)));
        }}},
  };
  return filters;
}

// ext_authz's cluster, and its route overrides.
void validate_ext_authz(const config::Config& c, std::vector<std::string>& errors) {
  for (const config::Listener& l : c.listeners) {
    for (const config::FilterConfig& f : l.filters) {
      if (f.name != "ext_authz" || !f.typed) continue;
      const auto* e = static_cast<const ext_authz::Config*>(f.typed.get());
      if (e->cluster.empty()) {
        errors.push_back(l.name + ": ext_authz on a listener needs http_service");
      } else if (c.cluster_index(e->cluster) < 0) {
        errors.push_back(e->cluster_origin + ": ext_authz: no cluster named '" + e->cluster + "'");
      }
    }
  }
}

// credential_injector's token endpoint cluster.
void validate_credential_injector(const config::Config& c, std::vector<std::string>& errors) {
  for (const config::Listener& l : c.listeners) {
    for (const config::FilterConfig& f : l.filters) {
      if (f.name != "credential_injector" || !f.typed) continue;
      const auto* ci = static_cast<const credential_injector::Config*>(f.typed.get());
      if (ci->kind == credential_injector::Config::Kind::kOAuth2 &&
          c.cluster_index(ci->token_cluster) < 0) {
        errors.push_back(ci->token_cluster_origin + ": credential_injector: no cluster named '" +
                         ci->token_cluster + "'");
      }
    }
  }
}

// What jwt_authn's parser cannot see: remote_jwks clusters, and route
// overrides naming a requirement of their listener's filter.
void validate_jwt_authn(const config::Config& c, std::vector<std::string>& errors) {
  for (const config::Listener& l : c.listeners) {
    const jwt_authn::Config* listener_config = nullptr;
    for (const config::FilterConfig& f : l.filters) {
      if (f.name != "jwt_authn" || !f.typed) continue;
      listener_config = static_cast<const jwt_authn::Config*>(f.typed.get());
      if (listener_config->per_route) {
        errors.push_back(listener_config->origin + ": jwt_authn on a listener needs providers");
      }
      for (const jwt_authn::Provider& p : listener_config->providers) {
        if (p.remote && c.cluster_index(p.remote_cluster) < 0) {
          errors.push_back(p.remote_cluster_origin + ": jwt_authn provider " + p.name +
                           ": no cluster named '" + p.remote_cluster + "'");
        }
      }
    }
    for (const config::Route& r : l.routes) {
      for (const config::FilterConfig& f : r.per_filter_config) {
        if (f.name != "jwt_authn" || !f.typed || listener_config == nullptr) continue;
        const auto* route = static_cast<const jwt_authn::Config*>(f.typed.get());
        if (!route->per_route) {
          errors.push_back(route->origin +
                           ": a route's jwt_authn takes disabled or requirement_name");
        } else if (!route->disabled && !listener_config->requirement(route->requirement_name)) {
          errors.push_back(route->origin + ": jwt_authn: no requirement_map entry named '" +
                           route->requirement_name + "' on listener " + l.name);
        }
      }
    }
  }
}

}  // namespace

void register_builtin() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const auto& [name, entry] : builtin()) config::register_filter(name, entry.parse);
    config::register_validator("jwt_authn", validate_jwt_authn);
    config::register_validator("ext_authz", validate_ext_authz);
    config::register_validator("credential_injector", validate_credential_injector);
  });
}

std::shared_ptr<const http::HttpFilterFactory> make_factory(const config::FilterConfig& filter) {
  auto it = builtin().find(filter.name);
  if (it == builtin().end()) throw std::logic_error("unknown filter " + filter.name);
  return it->second.make(filter.typed);
}

}  // namespace sidecar::filters
