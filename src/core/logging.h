// Process logging: spdlog to stderr, one line per event.
#pragma once

#include <string_view>

namespace sidecar::core {

// Sets up the default logger (stderr, "[time] [level] message").
// `level` is one of trace, debug, info, warn, error, critical, off.
// Returns false when the level name is unknown. Call once, before workers start.
bool init_logging(std::string_view level);

// Changes the level at run time; thread-safe. False for an unknown name.
bool set_log_level(std::string_view level);

}  // namespace sidecar::core
