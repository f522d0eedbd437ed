#include "config/registry.h"

#include <map>

namespace sidecar::config {
namespace {

using Registry = std::map<std::string, Parser>;

Registry& filters() {
  static Registry r;
  return r;
}
Registry& sections() {
  static Registry r;
  return r;
}

const Parser* find(const Registry& r, const std::string& name) {
  auto it = r.find(name);
  return it == r.end() ? nullptr : &it->second;
}

std::vector<std::string> names(const Registry& r) {
  std::vector<std::string> out;
  for (const auto& [name, parser] : r) out.push_back(name);
  return out;
}

}  // namespace

void register_filter(const std::string& name, Parser parser) {
  filters()[name] = std::move(parser);
}
const Parser* find_filter(const std::string& name) { return find(filters(), name); }
std::vector<std::string> filter_names() { return names(filters()); }

void register_section(const std::string& key, Parser parser) {
  sections()[key] = std::move(parser);
}
const Parser* find_section(const std::string& key) { return find(sections(), key); }
std::vector<std::string> section_names() { return names(sections()); }

namespace {
std::map<std::string, Validator>& validators() {
  static std::map<std::string, Validator> v;
  return v;
}
}  // namespace

void register_validator(const std::string& name, Validator validator) {
  validators()[name] = std::move(validator);
}

void run_validators(const Config& config, std::vector<std::string>& errors) {
  for (const auto& [name, v] : validators()) v(config, errors);
}

}  // namespace sidecar::config
