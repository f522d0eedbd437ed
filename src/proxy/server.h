// The proxy as a whole: N workers, each with its own copy of every
// listener's socket, config reloads, and the drains that stop it gracefully.
//
// Thread safety: all methods are called from the main thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "accesslog/writer.h"
#include "config/config.h"
#include "proxy/snapshot.h"
#include "stats/stats.h"

namespace sidecar::tls {
class Store;
}

namespace sidecar::upstream {
class HealthChecker;
}

namespace sidecar::proxy {

class Worker;

class Server {
 public:
  // `store` has one shard per worker (store.workers() >= 1 threads run the
  // data path); `access_log` may be null. Both outlive the server.
  // `tls` has applied `config` (and each later one before reload()).
  Server(std::shared_ptr<const config::Config> config, stats::Store& store, const tls::Store& tls,
         accesslog::Writer* access_log);
  ~Server();

  // Opens one SO_REUSEPORT socket per worker for every listener. Throws
  // std::system_error naming the address (e.g. already in use).
  void bind();
  // Starts the worker threads.
  void start();
  // Switches every worker to `config`: listeners with the same name and
  // address keep their sockets (no connection is refused), new or moved ones
  // are bound first; requests in flight finish on the old config. Throws
  // std::system_error, changing nothing, when a new address cannot be bound.
  void reload(std::shared_ptr<const config::Config> config);
  // The address each listener is bound to, by name (the real port when 0 was
  // configured).
  const std::map<std::string, config::Address>& listener_addresses() const { return addresses_; }
  // Drains the listeners of `direction` (see Worker::drain). Calls
  // `done(clean)` on `io` once every worker is done (clean = true) or
  // `timeout` passed (connections left are closed when the server stops).
  void drain(config::Direction direction, boost::asio::io_context& io,
             std::chrono::milliseconds timeout, std::function<void(bool clean)> done);
  // Where DNS discovery sends a cluster's new endpoints (see
  // upstream/dns_discovery.h); called on the health thread. Before start().
  void set_discovery_sink(
      std::function<void(const std::string& cluster, std::vector<config::Address>)> sink);
  // Stops the workers, closing whatever is left. Blocks until they exit.
  void stop();

  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }

 private:
  stats::Store& store_;
  const tls::Store& tls_;
  std::shared_ptr<const Snapshot> snapshot_;
  // Active health checks and outlier detection intervals (their own thread).
  std::unique_ptr<upstream::HealthChecker> health_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::map<std::string, config::Address> addresses_;
};

}  // namespace sidecar::proxy
