// Parsers registered by name, so that the loader validates parts of the
// config it does not know (with FILE:LINE:COL errors) and does not grow with
// every feature:
//   - HTTP filters: `listeners[].filters[].config`, by filter name;
//   - sections: top-level keys owned by a module (DESIGN.md "Subsystems
//     beside the data path"), by key ("sync", "logs", "registry", ...).
// A parser returns its own typed config as std::shared_ptr<const void>; the
// filter's factory or the module reads it back with the same type.
//
// Thread safety: register before loading any config (at startup); loading
// only reads the registry.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/reader.h"

namespace sidecar::config {

// Parses `node` (null when a filter has no `config`); reports problems
// through `reader`. Returns the typed config (may be null after errors).
using Parser = std::function<std::shared_ptr<const void>(const YAML::Node& node, Reader& reader)>;

void register_filter(const std::string& name, Parser parser);
// The parser for filter `name`, or nullptr.
const Parser* find_filter(const std::string& name);
std::vector<std::string> filter_names();

void register_section(const std::string& key, Parser parser);
// The parser for top-level key `key`, or nullptr.
const Parser* find_section(const std::string& key);
std::vector<std::string> section_names();

// Checks a whole parsed config against the world (e.g. that certificate
// files load and match their keys); appends "FILE:LINE:COL: message" lines.
// Run by every load (run, validate, reload) once parsing found no error.
using Validator = std::function<void(const Config& config, std::vector<std::string>& errors)>;
void register_validator(const std::string& name, Validator validator);
void run_validators(const Config& config, std::vector<std::string>& errors);

}  // namespace sidecar::config
