// The built-in HTTP filters, by name.
#pragma once

#include <memory>

#include "config/config.h"
#include "http/filter.h"

namespace sidecar::filters {

// Registers every built-in filter's config parser with the config loader.
// Call once at startup, before loading a config. Thread-safe (idempotent).
void register_builtin();

// The factory for a filter of a loaded config. Throws std::logic_error for a
// name that was not registered (the loader rejects those first).
std::shared_ptr<const http::HttpFilterFactory> make_factory(const config::FilterConfig& filter);

}  // namespace sidecar::filters
