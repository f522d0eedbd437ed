#include "filters/headers/config.h"

#include <fmt/format.h>

#include "http/http1_parser.h"

namespace sidecar::filters::headers {
namespace {

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (!http::is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool valid_value(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u != '\t' && (u < 0x20 || u == 0x7f)) return false;
  }
  return true;
}

void parse_add(const YAML::Node& n, const std::string& what, config::Reader& reader,
               std::vector<std::pair<std::string, std::string>>& out) {
  if (!n.IsSequence()) {
    reader.error(n, what + " must be a list of { name, value }");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    if (!item.IsMap() || !item["name"] || !item["value"] || item.size() != 2) {
      reader.error(item, fmt::format("{}[{}] must be {{ name, value }}", what, i));
      continue;
    }
    const std::string name = item["name"].as<std::string>();
    const std::string value = item["value"].as<std::string>();
    if (!valid_name(name))
      reader.error(item["name"], fmt::format("{}: '{}' is not a field name", what, name));
    if (!valid_value(value)) reader.error(item["value"], what + ": control characters in a value");
    out.emplace_back(name, value);
  }
}

void parse_remove(const YAML::Node& n, const std::string& what, config::Reader& reader,
                  std::vector<std::string>& out) {
  if (!n.IsSequence()) {
    reader.error(n, what + " must be a list of field names");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string name = n[i].IsScalar() ? n[i].Scalar() : "";
    if (!valid_name(name)) {
      reader.error(n[i], fmt::format("{}: '{}' is not a field name", what, name));
      continue;
    }
    out.push_back(name);
  }
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  if (!node || !node.IsMap()) {
    reader.error(node, "the headers filter needs a config mapping");
    return c;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    const std::string k = key.Scalar();
    if (k == "request_headers_to_add") {
      parse_add(it->second, k, reader, c->request_add);
    } else if (k == "request_headers_to_remove") {
      parse_remove(it->second, k, reader, c->request_remove);
    } else if (k == "response_headers_to_add") {
      parse_add(it->second, k, reader, c->response_add);
    } else if (k == "response_headers_to_remove") {
      parse_remove(it->second, k, reader, c->response_remove);
    } else {
      reader.error(key, fmt::format("unknown key '{}' in the headers filter (expected one of: "
                                    "request_headers_to_add, request_headers_to_remove, "
                                    "response_headers_to_add, response_headers_to_remove)",
                                    k));
    }
  }
  return c;
}

}  // namespace sidecar::filters::headers
