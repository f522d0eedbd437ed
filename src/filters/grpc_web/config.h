// Config of the `grpc_web` filter (Envoy's envoy.filters.http.grpc_web,
// whose config is empty too; docs/filters.md "grpc_web"):
//
//   filters:
//     - name: grpc_web
//
// Per route (typed_per_filter_config): { disabled: true } lets gRPC-Web
// requests on that route pass untranslated.
#pragma once

#include <memory>

#include "config/registry.h"

namespace sidecar::filters::grpc_web {

struct Config {
  bool disabled = false;
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::grpc_web
