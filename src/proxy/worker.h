// A worker: one thread running one io_context, with everything its
// connections need and share with nobody: a copy of each listener's socket
// (SO_REUSEPORT), upstream connection pools, the round-robin state, random
// numbers. A connection lives on one worker for its whole life.
//
// Thread safety: start, apply, drain and stop may be called from any thread
// (they post to the worker); everything else only on the worker's thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "accesslog/writer.h"
#include "core/random.h"
#include "core/timer_queue.h"
#include "proxy/snapshot.h"
#include "upstream/cluster.h"

namespace sidecar::proxy {

class Http1ServerConnection;
class Stream;
class WorkerHttpClient;
class TcpProxyConnection;
class Http2ServerConnection;
class Http2Pool;

class Worker {
 public:
  // `stats` is this worker's block; `access_log` may be null (no access log).
  Worker(unsigned index, std::shared_ptr<const Snapshot> snapshot, stats::WorkerStats* stats,
         accesslog::Writer* access_log);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  unsigned index() const { return index_; }
  boost::asio::io_context& io() { return io_; }

  // Takes ownership of a listening socket for the snapshot's listener
  // `name`. Call before start().
  void add_listener(const std::string& name, int fd);
  // The port listener `name` accepts on in this worker (its bound port, so
  // a configured port 0 is resolved), or 0. Worker thread only.
  uint16_t listener_port(const std::string& name) const;
  // Starts the thread.
  void start();
  // Switches to `snapshot`: new connections and new requests use it, requests
  // in flight finish on the one they started with. `fds` are sockets for
  // listeners that are new or moved to another address; listeners that are
  // gone or moved stop accepting and their connections drain. Clusters whose
  // config is unchanged keep their connection pools.
  void apply(std::shared_ptr<const Snapshot> snapshot, std::map<std::string, int> fds);
  // Stops accepting on the listeners of `direction`, closes their idle
  // keep-alive connections, lets their requests in flight finish (responses
  // carry "Connection: close"), and calls `on_drained` on the worker thread
  // once none of their connections is left.
  void drain(config::Direction direction, std::function<void()> on_drained);
  // Stops the thread and closes every connection that is left. Blocks.
  void stop();

  // Worker thread only.
  const std::shared_ptr<const Snapshot>& snapshot_ptr() const { return snapshot_; }
  // The runtime of cluster `index` of snapshot `s`: the worker's own when `s`
  // is current or the cluster is unchanged, else a retired one for this use.
  core::Ref<upstream::ClusterRuntime> cluster_for(const Snapshot& s, int index);
  bool draining(config::Direction d) const { return draining_[static_cast<int>(d)]; }
  core::Random& random() { return random_; }
  // The deadlines of this worker's connections (one asio timer for all).
  core::TimerQueue& timers() { return timers_; }
  stats::WorkerStats& stats() { return *stats_; }
  // The access log writer and this worker's ring, or null.
  accesslog::Writer* access_log() { return access_log_; }
  // HTTP requests of this worker's filters (http::AsyncClient).
  http::AsyncClient& http_client();
  // The HTTP/2 upstream connections of this worker.
  Http2Pool& http2_pool() { return *http2_pool_; }
  void add_connection(Http1ServerConnection* c);
  void remove_connection(Http1ServerConnection* c);
  // A stream for a new request, and back when it is done: streams are
  // recycled so that a request allocates nothing and an idle connection
  // holds no per-request state.
  std::unique_ptr<Stream> acquire_stream();
  void release_stream(std::unique_ptr<Stream> stream);
  void add_connection(TcpProxyConnection* c);
  void remove_connection(TcpProxyConnection* c);
  void add_connection(Http2ServerConnection* c);
  void remove_connection(Http2ServerConnection* c);

 private:
  struct Acceptor {
    Acceptor(boost::asio::io_context& io, const ListenerRuntime& l) : socket(io), listener(&l) {}
    boost::asio::ip::tcp::acceptor socket;
    const ListenerRuntime* listener;
    uint16_t port = 0;  // the bound port (a configured port 0 resolved)
    boost::asio::ip::tcp::endpoint peer;
  };

  void open_acceptor(const ListenerRuntime& listener, int fd);
  void accept(const std::shared_ptr<Acceptor>& a);
  // Accepts what is already queued on `a` (so that those clients are served,
  // with Connection: close, instead of reset), then closes it.
  void close_acceptor(Acceptor& a);
  void serve(Acceptor& a, boost::asio::ip::tcp::socket socket);
  void schedule_tick();
  core::Ref<upstream::ClusterRuntime> make_cluster(const Snapshot& s, size_t index);
  void maybe_drained();
  void close_all();

  const unsigned index_;
  stats::WorkerStats* const stats_;
  accesslog::Writer* const access_log_;
  boost::asio::io_context io_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<core::Ref<upstream::ClusterRuntime>> clusters_;   // by the snapshot's index
  std::map<std::string, std::shared_ptr<Acceptor>> acceptors_;  // by listener name
  boost::asio::steady_timer tick_;
  core::TimerQueue timers_;  // after io_: destroyed before it
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  core::Random random_;
  std::thread thread_;
  Http1ServerConnection* connections_ = nullptr;  // intrusive list through Http1ServerConnection
  std::vector<std::unique_ptr<Stream>> free_streams_;
  std::unique_ptr<WorkerHttpClient> http_client_;
  std::unique_ptr<Http2Pool> http2_pool_;
  TcpProxyConnection* tcp_connections_ = nullptr;
  Http2ServerConnection* h2_connections_ =
      nullptr;  // ... through Http2ServerConnection  // ... through TcpProxyConnection
  size_t connection_count_[2] = {0, 0};  // by direction, HTTP and TCP
  bool draining_[2] = {false, false};
  std::function<void()> on_drained_[2];
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace sidecar::proxy
