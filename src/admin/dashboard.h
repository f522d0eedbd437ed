// The live dashboard of the admin endpoint (docs/observability.md
// "Dashboard"), after Envoy's admin page and linkerd-viz:
//   GET /        a self-contained HTML page (no CDN; its script and style are
//                in the binary, a few KiB), fed by /stream; without
//                JavaScript it shows a static table of the routes.
//   GET /stream  server-sent events, one `snapshot` event a second: the
//                /stats JSON, /clusters, /ready, every module's status and
//                the recent 5xx requests. ?once=1: one event, then the end
//                (the page's first paint; scripts).
//   GET /tap     live requests as JSON lines (linkerd viz tap), filtered by
//                ?listener= &route= &cluster= &method= &path=(prefix)
//                &status=(503 | 5xx); ends after ?n= (default 100, at most
//                10000) requests or ?seconds= (default 60, at most 3600).
//
// Main thread only (the admin server's).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "admin/admin_server.h"

namespace sidecar::admin {

class Dashboard {
 public:
  // `module_keys` lists the modules whose GET /<key> status the snapshot has.
  Dashboard(boost::asio::io_context& io, AdminServer& admin,
            std::function<std::vector<std::string>()> module_keys);
  ~Dashboard();

  // The page (HTML), with the static table rendered from a /metrics text body.
  static std::string page(const std::string& metrics_text);
  // One snapshot event's JSON.
  std::string snapshot();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sidecar::admin
