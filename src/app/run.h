// What `sidecar run` and `sidecar validate` do, as functions the CLI calls.
#pragma once

#include <string>
#include <vector>

namespace sidecar::app {

// Process exit codes (sysexits.h), see DESIGN.md "Conventions".
inline constexpr int kExitOk = 0;
inline constexpr int kExitConfig = 64;    // bad config or usage
inline constexpr int kExitInternal = 70;  // could not start (e.g. address in use)

struct RunOptions {
  std::string config_path;               // empty: the embedded default config
  std::vector<std::string> app_command;  // empty: no supervised app
  std::string log_level = "info";
  std::string admin_address_path;  // when set, the admin address is written here once ready
  std::string version = "dev";     // for sidecar_build_info
  std::string revision = "unknown";
};

// Runs the sidecar until SIGTERM/SIGINT (or the app exits), then drains.
// Returns the process exit code: the app's when one is supervised, else 0;
// 64 for a bad config, 70 when it cannot start.
int run(const RunOptions& options);

// Loads and validates the config at `path`; prints "PATH: ok" to stdout, or
// every error as FILE:LINE:COL: message to stderr. Returns 0 or 64.
int validate(const std::string& path);

}  // namespace sidecar::app
