#include "app/run.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "admin/admin_server.h"
#include "config/loader.h"
#include "core/cpu.h"
#include "core/logging.h"
#include "proxy/server.h"
#include "supervisor/app_process.h"

namespace sidecar::app {
namespace {

std::shared_ptr<const config::Config> load(const std::string& path) {
  if (path.empty()) return config::load_string(config::default_yaml(), "<embedded default>");
  return config::load_file(path);
}

void print_errors(const config::ConfigError& e) {
  for (const std::string& m : e.messages()) std::fprintf(stderr, "%s\n", m.c_str());
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

int validate(const std::string& path) {
  try {
    config::load_file(path);
  } catch (const config::ConfigError& e) {
    print_errors(e);
    return kExitConfig;
  }
  std::printf("%s: ok\n", path.c_str());
  return kExitOk;
}

int run(const RunOptions& options) {
  std::shared_ptr<const config::Config> cfg;
  try {
    cfg = load(options.config_path);
  } catch (const config::ConfigError& e) {
    print_errors(e);
    return kExitConfig;
  }
  if (!core::init_logging(options.log_level)) {
    std::fprintf(stderr, "unknown log level '%s' (trace, debug, info, warn, error, off)\n",
                 options.log_level.c_str());
    return kExitConfig;
  }
  ::signal(SIGPIPE, SIG_IGN);

  const unsigned workers = cfg->workers != 0 ? cfg->workers : core::available_cpus();
  boost::asio::io_context io(1);
  proxy::Server server(cfg, workers);
  std::unique_ptr<admin::AdminServer> admin;
  try {
    server.bind();
    admin = std::make_unique<admin::AdminServer>(io, cfg->admin.address);
  } catch (const std::system_error& e) {
    spdlog::error("{}", e.what());
    return kExitInternal;
  }

  bool ready = false;
  bool draining = false;
  int exit_code = kExitOk;

  admin->handle("GET", "/ready", [&](const admin::AdminRequest&, admin::AdminResponse& r) {
    const bool ok = ready && !draining;
    r.status = ok ? 200 : 503;
    r.body = ok ? "ready\n" : (draining ? "draining\n" : "starting\n");
  });
  admin->handle("GET", "/listeners", [&](const admin::AdminRequest&, admin::AdminResponse& r) {
    std::string body = "[";
    for (size_t i = 0; i < cfg->listeners.size(); ++i) {
      if (i > 0) body += ",";
      body += fmt::format(R"({{"name":"{}","address":"{}"}})", json_escape(cfg->listeners[i].name),
                          server.listener_addresses()[i].to_string());
    }
    r.content_type = "application/json";
    r.body = body + "]\n";
  });
  admin->start();
  server.start();
  for (size_t i = 0; i < cfg->listeners.size(); ++i) {
    spdlog::info("listener {} on {}", cfg->listeners[i].name,
                 server.listener_addresses()[i].to_string());
  }
  spdlog::info("admin on {}; {} worker{}; config {}", admin->address().to_string(), workers,
               workers == 1 ? "" : "s", cfg->source);
  if (!options.admin_address_path.empty()) {
    // Written to a temporary name and renamed, so a reader never sees half of it.
    const std::string tmp = options.admin_address_path + ".tmp";
    std::ofstream(tmp) << admin->address().to_string() << "\n";
    std::rename(tmp.c_str(), options.admin_address_path.c_str());
  }

  std::optional<supervisor::AppProcess> app;
  boost::asio::steady_timer kill_timer(io);
  bool stopping_app = false;

  auto stop_app = [&] {
    if (!app || app->exited()) {
      io.stop();
      return;
    }
    spdlog::info("stopping the app (pid {}): SIGTERM, SIGKILL after {}ms", app->pid(),
                 cfg->app.stop_timeout.count());
    stopping_app = true;
    app->signal(SIGTERM);
    kill_timer.expires_after(cfg->app.stop_timeout);
    kill_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      spdlog::warn("the app did not exit in time: SIGKILL");
      app->signal(SIGKILL);
    });
  };
  auto shutdown = [&](const std::string& why) {
    if (draining) return;
    draining = true;
    spdlog::info("shutting down ({}): draining for up to {}ms", why, cfg->drain.timeout.count());
    server.drain(io, cfg->drain.timeout, [&](bool clean) {
      if (!clean) spdlog::warn("drain timeout: closing the connections left");
      stop_app();
    });
  };

  if (!options.app_command.empty()) {
    try {
      app.emplace(options.app_command, std::vector<std::pair<std::string, std::string>>{
                                           {"PORT", std::to_string(cfg->app.port)}});
      spdlog::info("app started: pid {}, PORT={}", app->pid(), cfg->app.port);
    } catch (const std::system_error& e) {
      spdlog::error("{}", e.what());
      exit_code = kExitInternal;
      shutdown("the app could not start");
    }
  }
  ready = true;

  boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGCHLD);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGCHLD) {
          supervisor::reap_children([&](pid_t pid, int status) {
            if (!app || !app->on_reaped(pid, status)) return;
            exit_code = *app->exit_code();
            spdlog::info("the app exited with code {}", exit_code);
            if (stopping_app) {
              kill_timer.cancel();
              io.stop();
            } else {
              shutdown("the app exited");
            }
          });
        } else if (draining) {
          spdlog::warn("second {}: exiting now", sig == SIGINT ? "SIGINT" : "SIGTERM");
          if (app && !app->exited()) app->signal(SIGKILL);
          io.stop();
        } else {
          shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  io.run();
  server.stop();
  admin.reset();
  spdlog::info("exit {}", exit_code);
  return exit_code;
}

}  // namespace sidecar::app
