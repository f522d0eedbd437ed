#include "filters/cache/config.h"

namespace sidecar::filters::cache {

std::shared_ptr<const void> parse(const YAML::Node& n, config::Reader& r) {
  auto c = std::make_shared<Config>();
  if (n.IsNull()) return c;  // `config: {}` or none: the defaults
  if (!r.is_map(n, "cache")) return c;
  if (auto v = n["disabled"]) {
    r.check_keys(n, "cache", {"disabled"});
    r.get_bool(v, "cache.disabled", c->disabled);
    return c;
  }
  r.check_keys(n, "cache", {"max_size", "max_object_size", "coalesce_timeout"});
  if (auto v = n["max_size"]) r.get_size(v, "cache.max_size", c->max_size, 64 << 10, 1ull << 40);
  if (auto v = n["max_object_size"]) {
    r.get_size(v, "cache.max_object_size", c->max_object_size, 1, 1ull << 32);
  }
  if (c->max_object_size > c->max_size / 16) {
    // An object must fit one stripe of the store (store.h).
    r.error(n["max_object_size"] ? n["max_object_size"] : n,
            "cache.max_object_size must be at most max_size / 16");
  }
  if (auto v = n["coalesce_timeout"])
    r.get_duration(v, "cache.coalesce_timeout", c->coalesce_timeout);
  return c;
}

}  // namespace sidecar::filters::cache
