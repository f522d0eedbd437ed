// Test helpers for config errors: the messages that loading a YAML text
// fails with (config::ConfigError, "FILE:LINE:COL: what is wrong" each).
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/loader.h"

namespace sidecar::config::testing {

// The messages of the ConfigError that loading `yaml` throws; a test
// failure (and no messages) when it loads.
inline std::vector<std::string> errors_of(const std::string& yaml) {
  try {
    load_string(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return {};
}

// Whether one of `errors` contains `text`.
inline bool has_error(const std::vector<std::string>& errors, const std::string& text) {
  for (const auto& e : errors) {
    if (e.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace sidecar::config::testing
