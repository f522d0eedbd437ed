#include "proxy/worker.h"

#include <pthread.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "proxy/http_connection.h"

namespace sidecar::proxy {

using boost::asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {
constexpr auto kTickPeriod = std::chrono::seconds(1);
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const Snapshot> snapshot)
    : index_(index), io_(1), snapshot_(std::move(snapshot)), tick_(io_) {
  for (const config::Cluster& c : snapshot_->config->clusters) {
    clusters_.push_back(std::make_unique<upstream::ClusterRuntime>(io_, c));
  }
}

Worker::~Worker() { stop(); }

void Worker::add_listener(size_t listener_index, int fd) {
  const ListenerRuntime& l = snapshot_->listeners[listener_index];
  auto a = std::make_unique<Acceptor>(io_, l);
  const bool v6 = l.config->address.host.find(':') != std::string::npos;
  a->socket.assign(v6 ? tcp::v6() : tcp::v4(), fd);
  acceptors_.push_back(std::move(a));
}

void Worker::start() {
  for (auto& a : acceptors_) accept(*a);
  schedule_tick();
  work_.emplace(io_.get_executor());
  thread_ = std::thread([this] {
    const std::string name = fmt::format("worker-{}", index_);
    pthread_setname_np(pthread_self(), name.c_str());
    io_.run();
  });
}

void Worker::accept(Acceptor& a) {
  a.socket.async_accept(a.peer, [this, &a](const error_code& ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !a.socket.is_open()) return;
    if (ec) {
      // Out of file descriptors, or the peer gave up before accept: pause
      // briefly rather than spin on an error that accept keeps returning.
      SPDLOG_WARN("listener {}: accept failed: {}", a.listener->config->name, ec.message());
      auto timer = std::make_shared<boost::asio::steady_timer>(io_, kAcceptRetry);
      timer->async_wait([this, &a, timer](const error_code& e) {
        if (!e && !draining_) accept(a);
      });
      return;
    }
    if (draining_) return;
    core::Ref<HttpConnection> c(new HttpConnection(*this, *a.listener, std::move(socket), a.peer));
    c->start();
    accept(a);
  });
}

void Worker::schedule_tick() {
  tick_.expires_after(kTickPeriod);
  tick_.async_wait([this](const error_code& ec) {
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& c : clusters_) c->close_expired(now);
    schedule_tick();
  });
}

void Worker::drain(std::function<void()> on_drained) {
  boost::asio::post(io_, [this, cb = std::move(on_drained)]() mutable {
    draining_ = true;
    on_drained_ = std::move(cb);
    for (auto& a : acceptors_) {
      error_code ec;
      a->socket.close(ec);
    }
    for (auto& c : clusters_) c->close_idle();
    for (HttpConnection* c = connections_; c != nullptr;) {
      HttpConnection* next = c->next;
      core::Ref<HttpConnection> keep(c);
      c->drain();
      c = next;
    }
    maybe_drained();
  });
}

void Worker::maybe_drained() {
  if (draining_ && connection_count_ == 0 && on_drained_) {
    auto cb = std::move(on_drained_);
    on_drained_ = nullptr;
    cb();
  }
}

void Worker::add_connection(HttpConnection* c) {
  c->prev = nullptr;
  c->next = connections_;
  if (connections_ != nullptr) connections_->prev = c;
  connections_ = c;
  ++connection_count_;
}

void Worker::remove_connection(HttpConnection* c) {
  if (c->prev != nullptr) {
    c->prev->next = c->next;
  } else {
    connections_ = c->next;
  }
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  --connection_count_;
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
  for (auto& a : acceptors_) {
    error_code ec;
    a->socket.close(ec);
  }
  tick_.cancel();
  on_drained_ = nullptr;
  while (connections_ != nullptr) {
    core::Ref<HttpConnection> keep(connections_);
    connections_->close();
  }
  for (auto& c : clusters_) c->close_idle();
}

}  // namespace sidecar::proxy
