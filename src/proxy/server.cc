#include "proxy/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/listen_socket.h"
#include "proxy/worker.h"
#include "tls/store.h"
#include "upstream/health_checker.h"

namespace sidecar::proxy {

Server::Server(std::shared_ptr<const config::Config> config, stats::Store& store,
               const tls::Store& tls, accesslog::Writer* access_log)
    : store_(store),
      tls_(tls),
      snapshot_(Snapshot::build(std::move(config), store, tls)),
      health_(std::make_unique<upstream::HealthChecker>(
          [&tls](const std::string& cluster) { return tls.cluster(cluster); })) {
  // Endpoint health first: a checked cluster's endpoints start failed.
  health_->update(*snapshot_->config);
  for (unsigned i = 0; i < store.workers(); ++i) {
    workers_.push_back(std::make_unique<Worker>(i, snapshot_, store.worker(i), access_log));
  }
}

Server::~Server() { stop(); }

void Server::bind() {
  for (const ListenerRuntime& l : snapshot_->listeners) {
    net::ListenSockets s = net::open_listen_sockets(l.config->address, worker_count(), true);
    addresses_[l.config->name] = s.address;
    for (unsigned i = 0; i < worker_count(); ++i)
      workers_[i]->add_listener(l.config->name, s.fds[i]);
  }
}

void Server::set_discovery_sink(
    std::function<void(const std::string& cluster, std::vector<config::Address>)> sink) {
  health_->set_discovery_sink(std::move(sink));
}

void Server::start() {
  health_->start();
  for (auto& w : workers_) w->start();
}

void Server::reload(std::shared_ptr<const config::Config> config) {
  auto next = Snapshot::build(std::move(config), store_, tls_);
  // Bind what is new first, so that a failure changes nothing.
  std::vector<std::pair<std::string, net::ListenSockets>> opened;
  try {
    for (const ListenerRuntime& l : next->listeners) {
      // Unchanged: the same configured address, or the address the old one
      // is bound to (a config that had port 0 now naming the real port).
      const config::Listener* old = snapshot_->config->find_listener(l.config->name);
      auto bound = addresses_.find(l.config->name);
      if (old != nullptr && (old->address == l.config->address ||
                             (bound != addresses_.end() && bound->second == l.config->address))) {
        continue;
      }
      opened.emplace_back(l.config->name,
                          net::open_listen_sockets(l.config->address, worker_count(), true));
    }
  } catch (...) {
    for (auto& [name, s] : opened) net::close_all(s);
    throw;
  }
  std::map<std::string, config::Address> addresses;
  for (const ListenerRuntime& l : next->listeners) {
    auto it = addresses_.find(l.config->name);
    if (it != addresses_.end()) addresses[l.config->name] = it->second;
  }
  std::vector<std::map<std::string, int>> fds(worker_count());
  for (auto& [name, s] : opened) {
    addresses[name] = s.address;
    for (unsigned i = 0; i < worker_count(); ++i) fds[i][name] = s.fds[i];
  }
  addresses_ = std::move(addresses);
  snapshot_ = next;
  health_->update(*next->config);
  for (unsigned i = 0; i < worker_count(); ++i) workers_[i]->apply(next, std::move(fds[i]));
}

void Server::drain(config::Direction direction, boost::asio::io_context& io,
                   std::chrono::milliseconds timeout, std::function<void(bool)> done) {
  struct State {
    explicit State(boost::asio::io_context& io) : timer(io) {}
    boost::asio::steady_timer timer;
    size_t remaining = 0;  // touched on the main thread only
    std::function<void(bool)> done;
    void finish(bool clean) {
      if (!done) return;
      timer.cancel();
      auto d = std::move(done);
      done = nullptr;
      d(clean);
    }
  };
  auto state = std::make_shared<State>(io);
  state->remaining = workers_.size();
  state->done = std::move(done);
  state->timer.expires_after(timeout);
  state->timer.async_wait([state](const boost::system::error_code& ec) {
    if (!ec) state->finish(false);
  });
  for (auto& w : workers_) {
    w->drain(direction, [state, &io] {
      boost::asio::post(io, [state] {
        if (--state->remaining == 0) state->finish(true);
      });
    });
  }
}

void Server::stop() {
  health_->stop(std::chrono::steady_clock::now() + std::chrono::seconds(1));
  for (auto& w : workers_) w->stop();
}

}  // namespace sidecar::proxy
