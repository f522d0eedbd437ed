#include "module/module.h"

#include <stdexcept>

#include "core/shared_object.h"

namespace sidecar::module {
namespace {

std::vector<Kind>& kinds() {
  static std::vector<Kind> k;
  return k;
}

}  // namespace

void register_kind(Kind kind) {
  config::register_section(kind.key, kind.parse);
  for (Kind& k : kinds()) {
    if (k.key == kind.key) {
      k = std::move(kind);
      return;
    }
  }
  kinds().push_back(std::move(kind));
}

std::unique_ptr<Module> create(const std::string& key, const config::Section& section, Host& host) {
  for (const Kind& k : kinds()) {
    if (k.key != key) continue;
    const CreateFn fn = k.create != nullptr
                            ? k.create
                            : reinterpret_cast<CreateFn>(core::load_symbol(key, kCreateSymbol));
    return std::unique_ptr<Module>(fn(section, host));
  }
  throw std::logic_error("no module kind " + key);
}

std::vector<std::unique_ptr<Module>> create_all(const config::Config& config, Host& host) {
  std::vector<std::unique_ptr<Module>> out;
  for (const Kind& k : kinds()) {
    if (const config::Section* s = config.section(k.key)) out.push_back(create(k.key, *s, host));
  }
  return out;
}

std::vector<std::string> keys() {
  std::vector<std::string> out;
  for (const Kind& k : kinds()) out.push_back(k.key);
  return out;
}

}  // namespace sidecar::module
