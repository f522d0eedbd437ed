// HTTP filters register the parser of their config here by name, so the
// loader can validate `listeners[].filters` (with FILE:LINE:COL errors)
// without knowing any filter. The parsed config is the filter's own type,
// carried as std::shared_ptr<const void> and read back by its factory.
//
// Thread safety: register before loading any config (at startup); loading
// only reads the registry.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace sidecar::config {

// Reports a problem at a node: "FILE:LINE:COL: message".
using ErrorFn = std::function<void(const YAML::Node& at, const std::string& message)>;
// Parses a filter's `config` node (null when absent); reports problems
// through `error`. Returns the typed config (may be null after errors).
using FilterParser =
    std::function<std::shared_ptr<const void>(const YAML::Node& config, const ErrorFn& error)>;

void register_filter(const std::string& name, FilterParser parser);
// The parser for `name`, or nullptr.
const FilterParser* find_filter(const std::string& name);
std::vector<std::string> filter_names();

}  // namespace sidecar::config
