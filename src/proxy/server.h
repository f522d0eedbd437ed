// The proxy as a whole: N workers, each with its own copy of every
// listener's socket, and the drain that stops them gracefully.
//
// Thread safety: all methods are called from the main thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "proxy/snapshot.h"

namespace sidecar::proxy {

class Worker;

class Server {
 public:
  // `workers` >= 1 threads will run the data path.
  Server(std::shared_ptr<const config::Config> config, unsigned workers);
  ~Server();

  // Opens one SO_REUSEPORT socket per worker for every listener. Throws
  // std::system_error naming the address (e.g. already in use).
  void bind();
  // The address each listener is bound to, by listener index (real ports
  // when 0 was configured). Valid after bind().
  const std::vector<config::Address>& listener_addresses() const { return addresses_; }
  // Starts the worker threads.
  void start();
  // Stops accepting and lets requests in flight finish. Calls `done(clean)`
  // on `io` once every worker is idle (clean = true) or `timeout` passed.
  void drain(boost::asio::io_context& io, std::chrono::milliseconds timeout,
             std::function<void(bool clean)> done);
  // Stops the workers, closing whatever is left. Blocks until they exit.
  void stop();

  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }

 private:
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<config::Address> addresses_;
};

}  // namespace sidecar::proxy
