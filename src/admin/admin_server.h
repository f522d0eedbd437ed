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

// A response written over time (server-sent events, a tap): the head goes
// out when the handler returns, then every write() in order; the connection
// closes after finish() or when the client goes away. Main thread only.
class AdminStream {
 public:
  virtual ~AdminStream() = default;
  // Queues `data`; false once the client is gone (stop producing then).
  virtual bool write(std::string data) = 0;
  // Ends the response once what is queued is written.
  virtual void finish() = 0;
  virtual bool closed() const = 0;
};

class AdminServer {
 public:
  using Handler = std::function<void(const AdminRequest&, AdminResponse&)>;
  using StreamHandler = std::function<void(const AdminRequest&, std::shared_ptr<AdminStream>)>;

  // Binds `address` (throws std::system_error). Does not accept until start().
  // With `tls`, connections are TLS with the slot's current context.
  AdminServer(boost::asio::io_context& io, const config::Address& address,
              std::shared_ptr<tls::ServerSlot> tls = nullptr);
  ~AdminServer();

  // The bound address (the real port when 0 was configured).
  const config::Address& address() const;
  // Serves `method` (GET or POST) requests for exactly `path`.
  void handle(const std::string& method, const std::string& path, Handler handler);
  // Serves GET requests for exactly `path` as a stream of `content_type`
  // (no content-length; the end of the body is the end of the connection).
  void handle_stream(const std::string& path, const std::string& content_type,
                     StreamHandler handler);
  // What a GET of `path` (with `query`) answers, without a connection: for
  // pages made of other endpoints (the dashboard). Main thread.
  AdminResponse get(const std::string& path, const std::string& query = "");
  // The largest request body read (bytes); larger ones get 413.
  void set_max_body(size_t bytes);
  void start();
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sidecar::admin
