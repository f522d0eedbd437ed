// The effective config as JSON (the admin /config endpoint): every field,
// defaults included, in the YAML shape. Values of keys that hold secrets
// (names containing "password", "secret", "token" or "private_key") are
// written as "[redacted]".
#pragma once

#include <string>

#include "config/config.h"

namespace sidecar::config {

std::string to_json(const Config& config);

}  // namespace sidecar::config
