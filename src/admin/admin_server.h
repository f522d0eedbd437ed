// The admin endpoint: a small HTTP/1.1 server on the main thread (never on a
// worker, so a busy or stuck worker cannot hide it), bound to 127.0.0.1 by
// default. Handlers are registered by method and path; a path registered for
// one method answers other methods with 405. Requests are parsed by the
// same strict codec as the data path; bodies up to 64 KiB are read (see
// set_max_body). Over TLS when given a context slot (`sidecar webhook`).
//
// Thread safety: construct, register and run on the main thread's io_context.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "module/module.h"
#include "tls/slot.h"

namespace sidecar::admin {

using AdminRequest = module::AdminRequest;
using AdminResponse = module::AdminResponse;

class AdminServer {
 public:
  using Handler = std::function<void(const AdminRequest&, AdminResponse&)>;

  // Binds `address` (throws std::system_error). Does not accept until start().
  // With `tls`, connections are TLS with the slot's current context.
  AdminServer(boost::asio::io_context& io, const config::Address& address,
              std::shared_ptr<tls::ServerSlot> tls = nullptr);
  ~AdminServer();

  // The bound address (the real port when 0 was configured).
  const config::Address& address() const;
  // Serves `method` (GET or POST) requests for exactly `path`.
  void handle(const std::string& method, const std::string& path, Handler handler);
  // The largest request body read (bytes); larger ones get 413.
  void set_max_body(size_t bytes);
  void start();
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sidecar::admin
