// sidecar's command line. Everything else lives in libraries (src/app/run.h).
#include <CLI/CLI.hpp>

#include "app/run.h"
#include "sidecar_version.h"

int main(int argc, char** argv) {
  CLI::App cli{
      "sidecar: one small process beside your app for traffic, TLS, metrics, logs, "
      "config files and registration."};
  cli.require_subcommand(1);
  cli.footer(R"(
Examples:
  sidecar run -- python3 app.py            proxy :8000 -> the app on :8080 (PORT=8080), admin :9901
  sidecar run -c sidecar.yaml -- ./server  your config, app supervised
  sidecar run -c sidecar.yaml              the app runs elsewhere (another container)
  sidecar validate -c sidecar.yaml         check a config: exit 0, or 64 with FILE:LINE:COL errors
  sidecar version

Config reference: docs/config.md)");

  sidecar::app::RunOptions run_options;
  run_options.version = SIDECAR_VERSION;
  run_options.revision = SIDECAR_GIT_REVISION;
  CLI::App* run = cli.add_subcommand("run", "Run the proxy, and the app given after --");
  run->add_option("-c,--config", run_options.config_path,
                  "YAML config file (default: the embedded config)");
  run->add_option("--log-level", run_options.log_level, "trace, debug, info, warn, error or off")
      ->default_val("info");
  run->add_option("--admin-address-path", run_options.admin_address_path,
                  "Write the admin address (HOST:PORT) to this file once ready");
  run->add_option("app", run_options.app_command, "The app to supervise, after --");

  std::string validate_path;
  CLI::App* validate = cli.add_subcommand("validate", "Check a config file");
  validate->add_option("-c,--config", validate_path, "YAML config file")->required();

  CLI::App* version = cli.add_subcommand("version", "Print the version");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
    return rc == 0 ? 0 : sidecar::app::kExitConfig;
  }
  if (run->parsed()) return sidecar::app::run(run_options);
  if (validate->parsed()) return sidecar::app::validate(validate_path);
  if (version->parsed()) {
    std::printf("sidecar %s (%s)\n", SIDECAR_VERSION, SIDECAR_GIT_REVISION);
    return 0;
  }
  return sidecar::app::kExitConfig;
}
