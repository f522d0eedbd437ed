#include "proxy/server.h"

#include <atomic>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/listen_socket.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

Server::Server(std::shared_ptr<const config::Config> config, unsigned workers)
    : snapshot_(Snapshot::build(std::move(config))) {
  if (workers < 1) workers = 1;
  for (unsigned i = 0; i < workers; ++i) workers_.push_back(std::make_unique<Worker>(i, snapshot_));
}

Server::~Server() { stop(); }

void Server::bind() {
  for (const ListenerRuntime& l : snapshot_->listeners) {
    net::ListenSockets s = net::open_listen_sockets(l.config->address, worker_count(), true);
    addresses_.push_back(s.address);
    for (unsigned i = 0; i < worker_count(); ++i) workers_[i]->add_listener(l.index, s.fds[i]);
  }
}

void Server::start() {
  for (auto& w : workers_) w->start();
}

void Server::drain(boost::asio::io_context& io, std::chrono::milliseconds timeout,
                   std::function<void(bool)> done) {
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
    w->drain([state, &io] {
      boost::asio::post(io, [state] {
        if (--state->remaining == 0) state->finish(true);
      });
    });
  }
}

void Server::stop() {
  for (auto& w : workers_) w->stop();
}

}  // namespace sidecar::proxy
