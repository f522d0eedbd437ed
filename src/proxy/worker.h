// A worker: one thread running one io_context, with everything its
// connections need and share with nobody: a copy of each listener's socket
// (SO_REUSEPORT), upstream connection pools, the round-robin state, random
// numbers. A connection lives on one worker for its whole life.
//
// Thread safety: start, drain and stop may be called from any thread (they
// post to the worker); everything else only on the worker's thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/random.h"
#include "proxy/snapshot.h"
#include "upstream/cluster.h"

namespace sidecar::proxy {

class HttpConnection;

class Worker {
 public:
  Worker(unsigned index, std::shared_ptr<const Snapshot> snapshot);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  unsigned index() const { return index_; }
  boost::asio::io_context& io() { return io_; }

  // Takes ownership of a listening socket for listener `listener_index` of
  // the snapshot. Call before start().
  void add_listener(size_t listener_index, int fd);
  // Starts the thread.
  void start();
  // Stops accepting, closes idle keep-alive connections, lets requests in
  // flight finish (their responses carry "Connection: close"), and calls
  // `on_drained` on the worker thread once no connection is left.
  void drain(std::function<void()> on_drained);
  // Stops the thread and closes every connection that is left. Blocks.
  void stop();

  // Worker thread only.
  const Snapshot& snapshot() const { return *snapshot_; }
  const std::shared_ptr<const Snapshot>& snapshot_ptr() const { return snapshot_; }
  upstream::ClusterRuntime& cluster(int index) { return *clusters_[index]; }
  bool draining() const { return draining_; }
  core::Random& random() { return random_; }
  void add_connection(HttpConnection* c);
  void remove_connection(HttpConnection* c);
  size_t connection_count() const { return connection_count_; }

 private:
  struct Acceptor {
    Acceptor(boost::asio::io_context& io, const ListenerRuntime& l) : socket(io), listener(&l) {}
    boost::asio::ip::tcp::acceptor socket;
    const ListenerRuntime* listener;
    boost::asio::ip::tcp::endpoint peer;
  };

  void accept(Acceptor& a);
  void schedule_tick();
  void maybe_drained();
  void close_all();

  const unsigned index_;
  boost::asio::io_context io_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<std::unique_ptr<upstream::ClusterRuntime>> clusters_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  boost::asio::steady_timer tick_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  core::Random random_;
  std::thread thread_;
  HttpConnection* connections_ = nullptr;  // intrusive list through HttpConnection
  size_t connection_count_ = 0;
  bool draining_ = false;
  bool stopped_ = false;
  std::function<void()> on_drained_;
};

}  // namespace sidecar::proxy
