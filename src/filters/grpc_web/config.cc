#include "filters/grpc_web/config.h"

namespace sidecar::filters::grpc_web {

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || node.IsNull()) return c;  // `- name: grpc_web` takes no config
  if (!reader.is_map(node, "grpc_web")) return c;
  reader.check_keys(node, "grpc_web", {"disabled"});
  if (auto v = node["disabled"]) reader.get_bool(v, "grpc_web.disabled", c->disabled);
  return c;
}

}  // namespace sidecar::filters::grpc_web
