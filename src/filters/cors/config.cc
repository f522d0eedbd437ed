#include "filters/cors/config.h"

#include <fmt/format.h>

namespace sidecar::filters::cors {
namespace {

bool field_value(const std::string& v) {
  for (char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the cors filter needs a config mapping");
    return c;
  }
  reader.check_keys(node, "cors",
                    {"disabled", "allow_origin_string_match", "allow_methods", "allow_headers",
                     "expose_headers", "max_age", "allow_credentials"});
  if (auto v = node["disabled"]) reader.get_bool(v, "cors.disabled", c->disabled);
  if (auto v = node["allow_origin_string_match"];
      v && reader.is_seq(v, "cors.allow_origin_string_match")) {
    for (size_t i = 0; i < v.size(); ++i) {
      StringMatch m;
      const std::string w = fmt::format("cors.allow_origin_string_match[{}]", i);
      if (reader.is_map(v[i], w) && parse_string_match(v[i], w, reader, m, false))
        c->allow_origins.push_back(std::move(m));
    }
  }
  if (!c->disabled && c->allow_origins.empty())
    reader.error(node, "cors needs allow_origin_string_match (or, on a route, disabled: true)");
  struct Text {
    const char* key;
    std::string* out;
  };
  for (Text t : {Text{"allow_methods", &c->allow_methods}, Text{"allow_headers", &c->allow_headers},
                 Text{"expose_headers", &c->expose_headers}, Text{"max_age", &c->max_age}}) {
    if (auto v = node[t.key]) {
      if (reader.get_string(v, std::string("cors.") + t.key, *t.out) && !field_value(*t.out))
        reader.error(v, std::string("cors.") + t.key + ": control characters");
    }
  }
  if (!c->max_age.empty() && c->max_age.find_first_not_of("0123456789") != std::string::npos)
    reader.error(node["max_age"], "cors.max_age must be a number of seconds");
  if (auto v = node["allow_credentials"])
    reader.get_bool(v, "cors.allow_credentials", c->allow_credentials);
  return c;
}

}  // namespace sidecar::filters::cors
