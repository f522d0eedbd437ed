// Checks, every `period`, whether the app answers: a TCP connect to
// 127.0.0.1:<port>, or an HTTP/1.1 GET of `http_path` answered with a 2xx or
// 3xx status, each within `timeout`. Readiness follows the last check (the
// app can become unready again), like a Kubernetes readiness probe.
//
// Thread safety: on the main thread's io_context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "config/config.h"

namespace sidecar::supervisor {

class ReadinessProbe {
 public:
  ReadinessProbe(boost::asio::io_context& io, uint16_t port, config::ReadyCheck check);
  ~ReadinessProbe();

  void start();
  void stop();
  bool ready() const;
  // Called when readiness changes.
  std::function<void(bool ready)> on_change;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace sidecar::supervisor
