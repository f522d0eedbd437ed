#include "proxy/worker.h"

#include <pthread.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "core/buffer.h"
#include "proxy/async_client.h"
#include "proxy/http1_server.h"
#include "proxy/http2_server.h"
#include "proxy/http2_upstream.h"
#include "proxy/tcp_proxy.h"

namespace sidecar::proxy {

using boost::asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {
constexpr auto kTickPeriod = std::chrono::seconds(1);
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
int slot(config::Direction d) { return static_cast<int>(d); }
bool is_tcp(const ListenerRuntime& l) {
  return l.config->protocol == config::ListenerProtocol::kTcp;
}

template <typename C>
void link(C*& head, C* c) {
  c->prev = nullptr;
  c->next = head;
  if (head != nullptr) head->prev = c;
  head = c;
}

template <typename C>
void unlink(C*& head, C* c) {
  if (c->prev != nullptr) {
    c->prev->next = c->next;
  } else {
    head = c->next;
  }
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
}

// Drains the connections of a list for which pred(connection) holds.
template <typename C, typename Pred>
void drain_each(C* head, Pred pred) {
  for (C* c = head; c != nullptr;) {
    C* next = c->next;
    if (pred(*c)) {
      core::Ref<C> keep(c);
      c->drain();
    }
    c = next;
  }
}
}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const Snapshot> snapshot, stats::WorkerStats* stats,
               accesslog::Writer* access_log)
    : index_(index),
      stats_(stats),
      access_log_(access_log),
      io_(1),
      snapshot_(std::move(snapshot)),
      tick_(io_),
      timers_(io_),
      http_client_(std::make_unique<WorkerHttpClient>(*this)),
      http2_pool_(std::make_unique<Http2Pool>()) {
  for (size_t i = 0; i < snapshot_->config->clusters.size(); ++i) {
    clusters_.push_back(make_cluster(*snapshot_, i));
  }
}

core::Ref<upstream::ClusterRuntime> Worker::make_cluster(const Snapshot& s, size_t index) {
  std::vector<stats::EndpointStats*> stats;
  for (const auto& per_worker : s.endpoint_stats[index]) stats.push_back(per_worker[index_]);
  return core::Ref<upstream::ClusterRuntime>(
      new upstream::ClusterRuntime(io_, s.config->clusters[index], stats, s.cluster_tls[index],
                                   s.cluster_breakers[index], random_.next()));
}

Worker::~Worker() { stop(); }

void Worker::open_acceptor(const ListenerRuntime& l, int fd) {
  auto a = std::make_shared<Acceptor>(io_, l);
  const bool v6 = l.config->address.host.find(':') != std::string::npos;
  a->socket.assign(v6 ? tcp::v6() : tcp::v4(), fd);
  error_code ec;
  a->port = a->socket.local_endpoint(ec).port();
  acceptors_[l.config->name] = a;
  if (started_) accept(a);
}

uint16_t Worker::listener_port(const std::string& name) const {
  const auto it = acceptors_.find(name);
  return it == acceptors_.end() ? 0 : it->second->port;
}

void Worker::add_listener(const std::string& name, int fd) {
  open_acceptor(*snapshot_->find(name), fd);
}

void Worker::start() {
  started_ = true;
  for (auto& [name, a] : acceptors_) accept(a);
  schedule_tick();
  work_.emplace(io_.get_executor());
  thread_ = std::thread([this] {
    const std::string name = fmt::format("worker-{}", index_);
    pthread_setname_np(pthread_self(), name.c_str());
    io_.run();
  });
}

void Worker::accept(const std::shared_ptr<Acceptor>& a) {
  a->socket.async_accept(a->peer, [this, a](const error_code& ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !a->socket.is_open()) return;
    if (ec) {
      // Out of file descriptors, or the peer gave up before accept: pause
      // briefly rather than spin on an error that accept keeps returning.
      SPDLOG_WARN("listener {}: accept failed: {}", a->listener->config->name, ec.message());
      auto timer = std::make_shared<boost::asio::steady_timer>(io_, kAcceptRetry);
      timer->async_wait([this, a, timer](const error_code& e) {
        if (!e && a->socket.is_open()) accept(a);
      });
      return;
    }
    serve(*a, std::move(socket));
    accept(a);
  });
}

void Worker::serve(Acceptor& a, tcp::socket socket) {
  if (is_tcp(*a.listener)) {
    core::Ref<TcpProxyConnection> c(
        new TcpProxyConnection(*this, *a.listener, std::move(socket), a.peer));
    c->start();
    if (draining(c->direction())) c->drain();
    return;
  }
  core::Ref<Http1ServerConnection> c(
      new Http1ServerConnection(*this, *a.listener, std::move(socket), a.peer));
  c->start();
  if (draining(c->direction())) c->drain();
}

void Worker::close_acceptor(Acceptor& a) {
  error_code ec;
  a.socket.non_blocking(true, ec);
  // Closing one socket of a SO_REUSEPORT group resets the connections in its
  // accept queue: take them first.
  for (int i = 0; i < 1024 && !ec; ++i) {
    tcp::socket s(io_);
    a.socket.accept(s, a.peer, ec);
    if (!ec) serve(a, std::move(s));
  }
  a.socket.close(ec);
}

void Worker::schedule_tick() {
  tick_.expires_after(kTickPeriod);
  tick_.async_wait([this](const error_code& ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& c : clusters_) c->close_expired(now);
    http2_pool_->close_idle(now, false);
    const core::BufferPool& pool = core::BufferPool::local();
    stats_->read_buffers_in_use.set(pool.in_use());
    stats_->read_buffers_free.set(static_cast<int64_t>(pool.free_blocks()));
    schedule_tick();
  });
}

core::Ref<upstream::ClusterRuntime> Worker::cluster_for(const Snapshot& s, int index) {
  if (&s == snapshot_.get()) return clusters_[index];
  const config::Cluster& wanted = s.config->clusters[index];
  for (auto& c : clusters_) {
    if (c->config() == wanted) return c;
  }
  core::Ref<upstream::ClusterRuntime> once = make_cluster(s, static_cast<size_t>(index));
  once->retire();
  return once;
}

void Worker::apply(std::shared_ptr<const Snapshot> snapshot, std::map<std::string, int> fds) {
  boost::asio::post(io_, [this, snapshot = std::move(snapshot), fds = std::move(fds)] {
    snapshot_ = snapshot;
    // Clusters: an unchanged one keeps its runtime and pool.
    std::vector<core::Ref<upstream::ClusterRuntime>> next;
    for (size_t i = 0; i < snapshot_->config->clusters.size(); ++i) {
      const config::Cluster& c = snapshot_->config->clusters[i];
      core::Ref<upstream::ClusterRuntime> found;
      for (auto& old : clusters_) {
        if (old && old->config() == c) {
          found = std::move(old);
          break;
        }
      }
      next.push_back(found ? std::move(found) : make_cluster(*snapshot_, i));
    }
    for (auto& old : clusters_) {
      if (old) old->retire();
    }
    clusters_ = std::move(next);

    // Listeners the server did not give a new socket keep theirs.
    for (auto it = acceptors_.begin(); it != acceptors_.end();) {
      const ListenerRuntime* l = snapshot_->find(it->first);
      if (l == nullptr || fds.count(it->first) != 0) {
        close_acceptor(*it->second);
        it = acceptors_.erase(it);
      } else {
        it->second->listener = l;
        ++it;
      }
    }
    for (const auto& [name, fd] : fds) {
      const ListenerRuntime* l = snapshot_->find(name);
      if (l == nullptr || draining(l->config->direction)) {
        ::close(fd);
        continue;
      }
      open_acceptor(*l, fd);
    }
    // Connections of listeners that are gone (or moved, or now speak
    // another protocol) finish and close.
    auto stale = [&](const auto& c, bool tcp) {
      const ListenerRuntime* l = snapshot_->find(c.listener_name());
      return l == nullptr || fds.count(c.listener_name()) != 0 || is_tcp(*l) != tcp;
    };
    drain_each(connections_, [&](const auto& c) { return stale(c, false); });
    drain_each(h2_connections_, [&](const auto& c) { return stale(c, false); });
    drain_each(tcp_connections_, [&](const auto& c) { return stale(c, true); });
  });
}

void Worker::drain(config::Direction direction, std::function<void()> on_drained) {
  boost::asio::post(io_, [this, direction, cb = std::move(on_drained)]() mutable {
    draining_[slot(direction)] = true;
    on_drained_[slot(direction)] = std::move(cb);
    for (auto it = acceptors_.begin(); it != acceptors_.end();) {
      if (it->second->listener->config->direction == direction) {
        close_acceptor(*it->second);
        it = acceptors_.erase(it);
      } else {
        ++it;
      }
    }
    // TCP connections close at drain.timeout unless they end before.
    auto in_direction = [direction](const auto& c) { return c.direction() == direction; };
    drain_each(connections_, in_direction);
    drain_each(h2_connections_, in_direction);
    drain_each(tcp_connections_, in_direction);
    maybe_drained();
  });
}

void Worker::maybe_drained() {
  for (int d = 0; d < 2; ++d) {
    if (draining_[d] && connection_count_[d] == 0 && on_drained_[d]) {
      auto cb = std::move(on_drained_[d]);
      on_drained_[d] = nullptr;
      cb();
    }
  }
}

http::AsyncClient& Worker::http_client() { return *http_client_; }

std::unique_ptr<Stream> Worker::acquire_stream() {
  if (free_streams_.empty()) return std::make_unique<Stream>();
  std::unique_ptr<Stream> s = std::move(free_streams_.back());
  free_streams_.pop_back();
  return s;
}

void Worker::release_stream(std::unique_ptr<Stream> stream) {
  // Enough for the concurrency of a busy worker; beyond it, freed.
  constexpr size_t kMaxFree = 256;
  if (stream && free_streams_.size() < kMaxFree) free_streams_.push_back(std::move(stream));
}

void Worker::add_connection(Http1ServerConnection* c) {
  link(connections_, c);
  ++connection_count_[slot(c->direction())];
}

void Worker::remove_connection(Http1ServerConnection* c) {
  unlink(connections_, c);
  --connection_count_[slot(c->direction())];
  maybe_drained();
}

void Worker::add_connection(TcpProxyConnection* c) {
  link(tcp_connections_, c);
  ++connection_count_[slot(c->direction())];
}

void Worker::remove_connection(TcpProxyConnection* c) {
  unlink(tcp_connections_, c);
  --connection_count_[slot(c->direction())];
  maybe_drained();
}

void Worker::add_connection(Http2ServerConnection* c) {
  link(h2_connections_, c);
  ++connection_count_[slot(c->direction())];
}

void Worker::remove_connection(Http2ServerConnection* c) {
  unlink(h2_connections_, c);
  --connection_count_[slot(c->direction())];
  maybe_drained();
}

void Worker::stop() {
  if (stopped_) return;
  stopped_ = true;
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // The thread is gone: finish on this one. Close everything, then run the
  // aborted operations' handlers so every connection is released.
  close_all();
  io_.restart();
  io_.run();
}

void Worker::close_all() {
  for (auto& [name, a] : acceptors_) {
    error_code ec;
    a->socket.close(ec);
  }
  acceptors_.clear();
  tick_.cancel();
  on_drained_[0] = on_drained_[1] = nullptr;
  while (connections_ != nullptr) {
    core::Ref<Http1ServerConnection> keep(connections_);
    connections_->close();
  }
  while (tcp_connections_ != nullptr) {
    core::Ref<TcpProxyConnection> keep(tcp_connections_);
    tcp_connections_->close();
  }
  while (h2_connections_ != nullptr) {
    core::Ref<Http2ServerConnection> keep(h2_connections_);
    h2_connections_->close();
  }
  http2_pool_->close_idle(std::chrono::steady_clock::now(), true);
  for (auto& c : clusters_) c->retire();
}

}  // namespace sidecar::proxy
