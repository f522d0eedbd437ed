#include "config/filter_registry.h"

#include <map>

namespace sidecar::config {
namespace {
std::map<std::string, FilterParser>& registry() {
  static std::map<std::string, FilterParser> r;
  return r;
}
}  // namespace

void register_filter(const std::string& name, FilterParser parser) {
  registry()[name] = std::move(parser);
}

const FilterParser* find_filter(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> filter_names() {
  std::vector<std::string> names;
  for (const auto& [name, parser] : registry()) names.push_back(name);
  return names;
}

}  // namespace sidecar::config
