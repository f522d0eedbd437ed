#include "app/webhook.h"

#include <csignal>
#include <cstdio>
#include <fstream>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "admin/admin_server.h"
#include "app/run.h"
#include "config/loader.h"
#include "k8s/webhook.h"
#include "tls/store.h"

namespace sidecar::app {
namespace {

// An AdmissionReview carries one object; 4 MiB is the API server's own
// request limit for most objects.
constexpr size_t kBodyLimit = 4 * 1024 * 1024;

}  // namespace

int run_webhook(const WebhookOptions& options) {
  std::string why;
  auto address = config::parse_address(options.listen, why);
  if (!address) {
    spdlog::error("webhook: --listen {}: {}", options.listen, why);
    return kExitConfig;
  }
  // The certificate as a TLS listener of a config, so that the store loads,
  // checks and watches it like any other.
  config::Config tls_config;
  tls_config.source = "sidecar webhook";
  config::Listener listener;
  listener.name = "webhook";
  listener.address = *address;
  listener.tls.enabled = true;
  listener.tls.origin = "--cert/--key";
  listener.tls.certificates.push_back({options.cert_file, options.key_file, "--cert/--key"});
  tls_config.listeners.push_back(listener);

  boost::asio::io_context io(1);
  tls::Store store(io);
  try {
    store.apply(tls_config);
  } catch (const std::exception& e) {
    spdlog::error("webhook: {}", e.what());
    return kExitConfig;
  }
  std::unique_ptr<admin::AdminServer> server;
  try {
    server = std::make_unique<admin::AdminServer>(io, *address, store.listener("webhook"));
  } catch (const std::system_error& e) {
    spdlog::error("webhook: cannot listen on {}: {}", options.listen, e.what());
    return kExitInternal;
  }
  server->set_max_body(kBodyLimit);
  server->handle("POST", "/inject", [&](const admin::AdminRequest& req, admin::AdminResponse& r) {
    k8s::HttpAnswer a = k8s::handle_admission_review(req.body, options.inject);
    r.status = a.status;
    r.content_type = a.content_type;
    r.body = std::move(a.body);
  });
  for (const char* path : {"/ready", "/healthz"}) {
    server->handle("GET", path,
                   [](const admin::AdminRequest&, admin::AdminResponse& r) { r.body = "ok\n"; });
  }
  server->start();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("webhook: signal {}, stopping", sig);
    server->stop();
    io.stop();
  });
  const std::string bound = server->address().to_string();
  if (!options.address_path.empty()) {
    // Written whole, then renamed: a reader never sees half an address.
    const std::string tmp = options.address_path + ".tmp";
    std::ofstream(tmp) << bound << "\n";
    std::rename(tmp.c_str(), options.address_path.c_str());
  }
  spdlog::info("webhook: listening on https://{} (POST /inject, GET /ready)", bound);
  io.run();
  return kExitOk;
}

}  // namespace sidecar::app
