// sidecar's command line. Everything else lives in libraries (src/app/run.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/run.h"
#include "app/webhook.h"
#include "core/logging.h"
#include "k8s/inject.h"
#include "sidecar_version.h"

namespace {

// `sidecar inject`: the stream in, the injected stream on stdout, or every
// error on stderr and exit 64 (nothing on stdout then).
int run_inject(const std::string& path, const sidecar::k8s::Options& options) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot read\n", path.c_str());
      return sidecar::app::kExitConfig;
    }
    text << in.rdbuf();
  }
  auto result = sidecar::k8s::inject_stream(text.str(), options);
  for (const auto& e : result.errors) {
    std::fprintf(stderr, "%s: %s\n", path == "-" ? "stdin" : path.c_str(), e.c_str());
  }
  if (!result.errors.empty()) return sidecar::app::kExitConfig;
  std::fwrite(result.output.data(), 1, result.output.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : sidecar::app::kExitInternal;
}

}  // namespace

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
  sidecar inject -f deploy.yaml > injected.yaml   add the sidecar to Kubernetes workloads
  sidecar webhook --listen 0.0.0.0:8443 --cert tls.crt --key tls.key   the same, as an admission webhook
  sidecar version

Kubernetes: docs/kubernetes.md. Config reference: docs/config.md)");

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

  // Kubernetes (src/k8s/, docs/kubernetes.md).
  sidecar::k8s::Options inject_options;
  inject_options.version = SIDECAR_VERSION;
  inject_options.image = std::string("sidecar:") + SIDECAR_VERSION;
  auto add_inject_options = [&](CLI::App* sub) {
    sub->add_option("--config-map", inject_options.config_map,
                    "ConfigMap holding sidecar.yaml, mounted at /etc/sidecar")
        ->default_val("sidecar");
    sub->add_option("--image", inject_options.image, "The sidecar's image")
        ->default_val(inject_options.image);
    CLI::Option* native = sub->add_flag_callback(
        "--native", [&] { inject_options.mode = sidecar::k8s::Mode::kNative; },
        "An init container with restartPolicy: Always (Kubernetes >= 1.29; the default)");
    CLI::Option* classic = sub->add_flag_callback(
        "--classic", [&] { inject_options.mode = sidecar::k8s::Mode::kClassic; },
        "A second entry in containers (older clusters)");
    native->excludes(classic);
  };
  std::string inject_path;
  CLI::App* inject = cli.add_subcommand(
      "inject", "Add the sidecar to the workloads of a YAML stream (written to stdout)");
  inject->add_option("-f,--filename", inject_path, "Manifest file, or - for stdin")->required();
  add_inject_options(inject);

  sidecar::app::WebhookOptions webhook_options;
  CLI::App* webhook = cli.add_subcommand(
      "webhook", "Serve the same injection as a mutating admission webhook (HTTPS)");
  webhook->add_option("--listen", webhook_options.listen, "HOST:PORT")->default_val("0.0.0.0:8443");
  webhook->add_option("--cert", webhook_options.cert_file, "PEM certificate chain (watched)")
      ->required();
  webhook->add_option("--key", webhook_options.key_file, "PEM private key (watched)")->required();
  webhook->add_option("--address-path", webhook_options.address_path,
                      "Write the bound HOST:PORT to this file once listening");
  webhook
      ->add_option("--log-level", run_options.log_level, "trace, debug, info, warn, error or off")
      ->default_val("info");
  add_inject_options(webhook);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
    return rc == 0 ? 0 : sidecar::app::kExitConfig;
  }
  if (run->parsed()) return sidecar::app::run(run_options);
  if (validate->parsed()) return sidecar::app::validate(validate_path);
  if (inject->parsed()) return run_inject(inject_path, inject_options);
  if (webhook->parsed()) {
    if (!sidecar::core::init_logging(run_options.log_level)) {
      std::fprintf(stderr, "--log-level %s: unknown level\n", run_options.log_level.c_str());
      return sidecar::app::kExitConfig;
    }
    webhook_options.inject = inject_options;
    return sidecar::app::run_webhook(webhook_options);
  }
  if (version->parsed()) {
    std::printf("sidecar %s (%s)\n", SIDECAR_VERSION, SIDECAR_GIT_REVISION);
    return 0;
  }
  return sidecar::app::kExitConfig;
}
