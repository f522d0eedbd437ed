#include "filters/api_key/config.h"

#include "http/http1_parser.h"

namespace sidecar::filters::api_key {
namespace {

bool field_name(std::string& n) {
  bool ok = !n.empty();
  for (char& c : n) {
    ok = ok && http::is_tchar(static_cast<unsigned char>(c));
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return ok;
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the api_key filter needs a config mapping");
    return c;
  }
  reader.check_keys(
      node, "api_key",
      {"disabled", "keys_file", "from_headers", "from_params", "client_header", "forward"});
  if (auto v = node["disabled"]) reader.get_bool(v, "api_key.disabled", c->disabled);
  if (auto v = node["keys_file"]) reader.get_string(v, "api_key.keys_file", c->keys_file);
  if (c->keys_file.empty() && !c->disabled)
    reader.error(node, "api_key needs keys_file (or, on a route, disabled: true)");
  if (auto v = node["from_headers"]) {
    reader.get_strings(v, "api_key.from_headers", c->from_headers);
    for (std::string& h : c->from_headers) {
      if (!field_name(h)) reader.error(v, "api_key.from_headers: '" + h + "' is not a field name");
    }
  }
  if (auto v = node["from_params"]) reader.get_strings(v, "api_key.from_params", c->from_params);
  // The default header stays unless from_headers is given (even with params).
  if (!node["from_headers"]) c->from_headers.push_back("x-api-key");
  if (auto v = node["client_header"]) {
    if (reader.get_string(v, "api_key.client_header", c->client_header) &&
        !field_name(c->client_header)) {
      reader.error(v, "api_key.client_header is not a field name");
    }
  }
  if (auto v = node["forward"]) reader.get_bool(v, "api_key.forward", c->forward);
  return c;
}

}  // namespace sidecar::filters::api_key
