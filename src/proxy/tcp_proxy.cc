#include "proxy/tcp_proxy.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "accesslog/writer.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

using boost::asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = TcpProxyConnection::Clock;

namespace {

using core::kNever;
// The most one splice pump moves before it lets the worker's other
// connections run (it yields with a post).
constexpr size_t kSpliceBudget = 1024 * 1024;  // bytes
// Asked of one splice(2) into the pipe; the pipe takes what fits.
constexpr size_t kSpliceChunk = 1024 * 1024;  // bytes

uint64_t nanos(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

Clock::time_point after(Clock::time_point t, config::Duration d) {
  return d.count() > 0 ? t + d : kNever;
}

error_code errno_code(int e) { return error_code(e, boost::system::system_category()); }

// Makes the next close of `s` send RST instead of FIN.
void abort_on_close(net::Transport& t) {
  if (!t.is_open()) return;
  error_code ec;
  t.socket().set_option(boost::asio::socket_base::linger(true, 0), ec);
}

}  // namespace

bool TcpProxyConnection::splice_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("SIDECAR_TCP_SPLICE");
    return v == nullptr || std::string_view(v) != "0";
  }();
  return on;
}

TcpProxyConnection::TcpProxyConnection(Worker& worker, const ListenerRuntime& listener,
                                       tcp::socket socket, const tcp::endpoint& peer)
    : worker_(worker),
      snapshot_(worker.snapshot_ptr()),
      listener_(&listener),
      direction_(listener.config->direction),
      transport_(std::move(socket)),
      lstats_(listener.stats[worker.index()]),
      tstats_(listener.tcp_stats[worker.index()]) {
  const auto address = peer.address();
  const std::string ip =
      address.is_v6() && address.to_v6().is_v4_mapped()
          ? boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6())
                .to_string()
          : address.to_string();
  peer_address_ = address.is_v6() && !address.to_v6().is_v4_mapped()
                      ? fmt::format("[{}]:{}", ip, peer.port())
                      : fmt::format("{}:{}", ip, peer.port());
  lstats_->connections_active.add();
  lstats_->connections_total.add();
  tstats_->connections_active.add();
  tstats_->connections_total.add();
  start_ = last_activity_ = Clock::now();
  setup_deadline_ = drain_deadline_ = kNever;
  accesslog::Writer* log = worker_.access_log();
  log_this_ =
      log != nullptr && listener.config->access_log &&
      (log->config().sample >= 1.0 ||
       static_cast<double>(worker_.random().next() >> 11) * 0x1.0p-53 < log->config().sample);
  if (log_this_) {
    start_wall_us_ = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  }
  down_.from = &transport_;
  down_.downstream = true;
  up_.to = &transport_;
  worker_.add_connection(this);
}

TcpProxyConnection::~TcpProxyConnection() = default;

void TcpProxyConnection::start() {
  error_code ec;
  tcp::socket& socket = transport_.socket();
  socket.set_option(tcp::no_delay(true), ec);
  socket.non_blocking(true, ec);
  if (!listener_->tls) {
    connect_upstream();
    return;
  }
  transport_.set_secure(listener_->tls->get()->new_session(socket.native_handle()));
  phase_ = Phase::kHandshake;
  setup_deadline_ =
      after(Clock::now(), snapshot_->config->clusters[listener_->cluster].connect_timeout);
  arm_timer();
  transport_.async_handshake(
      [self = core::Ref<TcpProxyConnection>(this)](const error_code& e) { self->on_handshake(e); });
}

void TcpProxyConnection::on_handshake(const error_code& ec) {
  if (phase_ != Phase::kHandshake) return;
  if (ec) {
    handshake_failed(ec);
    return;
  }
  const net::TlsInfo& info = transport_.secure()->info();
  tls_ = &info;
  lstats_->tls_handshakes[info.version == "TLSv1.3" ? 1 : 0].add();
  for (const std::string& u : info.peer_uri_sans) {
    peer_uri_sans_ += (peer_uri_sans_.empty() ? "" : ",") + u;
  }
  connect_upstream();
}

void TcpProxyConnection::handshake_failed(const error_code& ec) {
  const net::TlsError reason = net::classify(ec);
  lstats_->tls_handshake_errors[static_cast<size_t>(reason) - 1].add();
  SPDLOG_DEBUG("{}: TLS handshake failed: {}", peer_address_,
               transport_.secure() != nullptr && !transport_.secure()->failure_reason().empty()
                   ? transport_.secure()->failure_reason()
                   : ec.message());
  close();
}

void TcpProxyConnection::connect_upstream() {
  phase_ = Phase::kConnecting;
  logged_ = true;
  cluster_ = worker_.cluster_for(*snapshot_, listener_->cluster);
  bool reused = false;
  upstream_ = cluster_->acquire(reused, /*fresh=*/true);  // never a pooled HTTP connection
  if (!upstream_) {
    // The cluster's circuit breaker (max_connections) is open: Envoy's
    // tcp_proxy closes the connection with flag UO.
    flags_ |= accesslog::kUpstreamOverflow;
    close();
    return;
  }
  upstream_->set_owner(this);
  setup_deadline_ = after(Clock::now(), cluster_->config().connect_timeout);
  arm_timer();
  upstream_->connect();
}

void TcpProxyConnection::on_upstream_connected(const error_code& ec) {
  if (phase_ != Phase::kConnecting) return;
  if (ec) {
    connect_failed(upstream_->tls_failure().empty()
                       ? ec.message()
                       : "TLS handshake failed: " + upstream_->tls_failure(),
                   false);
    return;
  }
  phase_ = Phase::kStreaming;
  setup_deadline_ = kNever;
  last_activity_ = Clock::now();
  start_pumps();
}

void TcpProxyConnection::connect_failed(const std::string& why, bool timed_out) {
  SPDLOG_DEBUG("{}: upstream connect to {} failed: {}", peer_address_, upstream_->endpoint().name(),
               why);
  // A TLS failure is a config or certificate problem: say it (at most once
  // a second per worker), as the HTTP path does.
  static thread_local Clock::time_point last_warning;
  if (!upstream_->tls_failure().empty() && Clock::now() - last_warning > std::chrono::seconds(1)) {
    last_warning = Clock::now();
    spdlog::warn("upstream {} of cluster {}: {}", upstream_->endpoint().name(),
                 cluster_->config().name, why);
  }
  stats::EndpointStats* es = upstream_->endpoint().stats;
  es->connect_failures.add();
  if (timed_out) es->connect_timeouts.add();
  tstats_->connect_failures.add();
  flags_ |= accesslog::kUpstreamConnectionFailure;
  close();
}

void TcpProxyConnection::start_pumps() {
  down_.to = &upstream_->transport();
  up_.from = &upstream_->transport();
  can_splice_ = transport_.secure() == nullptr && upstream_->transport().secure() == nullptr &&
                splice_enabled();
  in_.reserve(kBufferSize);
  upstream_->buffer().reserve(kBufferSize);  // a pooled connection may hold none
  down_.buffer = &in_;
  up_.buffer = &upstream_->buffer();
  down_.out.reserve(1);
  up_.out.reserve(1);
  read(down_);
  read(up_);
}

// ---- the copy path ----

void TcpProxyConnection::read(Pump& p) {
  if (phase_ != Phase::kStreaming) return;
  core::Buffer& b = *p.buffer;
  b.clear();
  if (p.last_read_filled) {
    if (b.capacity() >= kMaxBufferSize && can_splice_) {
      // A bulk transfer: the rest of this direction goes by splice(2).
      p.spliced = true;
      splice_pump(p);
      return;
    }
    if (b.capacity() < kMaxBufferSize) b.reserve(b.capacity() * 2);
  }
  p.from->async_read_some(boost::asio::buffer(b.write_ptr(), b.write_space()),
                          [self = core::Ref<TcpProxyConnection>(this), &p](
                              const error_code& ec, size_t n) { self->on_read(p, ec, n); });
}

void TcpProxyConnection::on_read(Pump& p, const error_code& ec, size_t bytes) {
  if (phase_ != Phase::kStreaming || ec == boost::asio::error::operation_aborted) return;
  if (ec == boost::asio::error::eof || (!ec && bytes == 0)) {
    p.eof = true;
    end_direction(p);
    return;
  }
  if (ec) {
    fail(p, true, ec);
    return;
  }
  core::Buffer& b = *p.buffer;
  p.last_read_filled = bytes == b.write_space();
  b.commit(bytes);
  count_read(p, bytes);
  write(p);
}

void TcpProxyConnection::write(Pump& p) {
  p.out.clear();
  p.out.emplace_back(p.buffer->readable().data(), p.buffer->size());
  error_code ec;
  if (p.to->write_now(p.out, ec)) {
    count_written(p, p.buffer->size());
    read(p);
    return;
  }
  if (ec) {
    fail(p, false, ec);
    return;
  }
  p.writing = true;
  p.write_since = Clock::now();
  arm_timer();
  p.to->async_write(p.out, [self = core::Ref<TcpProxyConnection>(this), &p](const error_code& e) {
    self->on_written(p, e);
  });
}

void TcpProxyConnection::on_written(Pump& p, const error_code& ec) {
  p.writing = false;
  if (phase_ != Phase::kStreaming || ec == boost::asio::error::operation_aborted) return;
  if (ec) {
    fail(p, false, ec);
    return;
  }
  count_written(p, p.buffer->size());
  read(p);
}

// ---- the splice(2) path (bulk transfers, plain TCP on both sides) ----

namespace {

using Pipe = TcpProxyConnection::Pipe;

// Pipes for splice(2), per worker thread. A pump holds one only while bytes
// are in it (a transfer waiting for its destination); an empty one goes back
// here, so a worker has about as many pipes as transfers in flight, not
// connections (haproxy pools its pipes the same way).
class PipePool {
 public:
  static constexpr size_t kMaxIdle = 32;
  // 256 KiB: splices a quarter of the system calls of the default 64 KiB
  // (bench/tcp.sh: 0.45 -> 0.31 CPU s/GiB). Counted against the user's
  // fs.pipe-user-pages-soft; past it the kernel's default size is kept.
  static constexpr int kPipeSize = 256 * 1024;  // bytes

  ~PipePool() {
    for (Pipe& p : idle_) close(p);
  }

  // A pipe, or one with fds of -1 when none can be made (out of fds).
  Pipe get() {
    if (!idle_.empty()) {
      Pipe p = idle_.back();
      idle_.pop_back();
      return p;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
    ::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);  // best effort
    return {fds[0], fds[1]};
  }
  // Takes back an empty pipe.
  void put(Pipe p) {
    if (idle_.size() < kMaxIdle) {
      idle_.push_back(p);
    } else {
      close(p);
    }
  }
  static void close(Pipe& p) {
    if (p.read >= 0) ::close(p.read);
    if (p.write >= 0) ::close(p.write);
    p = {};
  }

 private:
  std::vector<Pipe> idle_;
};

thread_local PipePool pipe_pool;

}  // namespace

void TcpProxyConnection::release_pipe(Pump& p) {
  if (p.pipe.read < 0) return;
  if (p.in_pipe == 0) {
    pipe_pool.put(p.pipe);
    p.pipe = {};
  } else {
    PipePool::close(p.pipe);  // bytes in it are lost with the connection
  }
}

// Moves bytes socket -> pipe -> socket until one of the sockets would block,
// the source ends, or the budget is spent. The pipe is emptied before it is
// filled again, so an EAGAIN from splicing into it means the source socket
// has nothing, never that the pipe is full. A pump waits for readiness only
// after a system call said EAGAIN.
void TcpProxyConnection::splice_pump(Pump& p) {
  if (phase_ != Phase::kStreaming || p.done) return;
  const int src = p.from->socket().native_handle();
  const int dst = p.to->socket().native_handle();
  size_t moved = 0;
  for (;;) {
    if (p.in_pipe > 0) {
      const ssize_t n = ::splice(p.pipe.read, nullptr, dst, nullptr, p.in_pipe,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        p.in_pipe -= static_cast<size_t>(n);
        moved += static_cast<size_t>(n);
        count_written(p, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (!p.writing) {
          p.writing = true;
          p.write_since = Clock::now();
          arm_timer();
        }
        p.to->socket().async_wait(
            tcp::socket::wait_write,
            [self = core::Ref<TcpProxyConnection>(this), &p](const error_code& ec) {
              if (ec == boost::asio::error::operation_aborted) return;
              if (ec) {
                if (self->phase_ == Phase::kStreaming) self->fail(p, false, ec);
                return;
              }
              self->splice_pump(p);
            });
        return;
      }
      fail(p, false, errno_code(n < 0 ? errno : EPIPE));
      return;
    }
    p.writing = false;
    if (p.eof) {
      release_pipe(p);
      end_direction(p);
      return;
    }
    if (moved >= kSpliceBudget) {
      release_pipe(p);
      boost::asio::post(worker_.io(),
                        [self = core::Ref<TcpProxyConnection>(this), &p] { self->splice_pump(p); });
      return;
    }
    if (p.pipe.read < 0) {
      p.pipe = pipe_pool.get();
      if (p.pipe.read < 0) {
        // Out of file descriptors: copy instead.
        p.spliced = false;
        p.last_read_filled = false;
        read(p);
        return;
      }
    }
    const ssize_t n = ::splice(src, nullptr, p.pipe.write, nullptr, kSpliceChunk,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      p.in_pipe = static_cast<size_t>(n);
      count_read(p, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      p.eof = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      release_pipe(p);
      p.from->socket().async_wait(
          tcp::socket::wait_read,
          [self = core::Ref<TcpProxyConnection>(this), &p](const error_code& ec) {
            if (ec == boost::asio::error::operation_aborted) return;
            if (ec) {
              if (self->phase_ == Phase::kStreaming) self->fail(p, true, ec);
              return;
            }
            self->splice_pump(p);
          });
      return;
    }
    fail(p, true, errno_code(errno));
    return;
  }
}

// ---- both paths ----

void TcpProxyConnection::count_read(Pump& p, size_t bytes) {
  last_activity_ = Clock::now();
  if (p.downstream) {
    received_ += bytes;
    tstats_->received_bytes.add(bytes);
  }
}

void TcpProxyConnection::count_written(Pump& p, size_t bytes) {
  last_activity_ = Clock::now();
  if (!p.downstream) {
    sent_ += bytes;
    tstats_->sent_bytes.add(bytes);
  }
}

void TcpProxyConnection::end_direction(Pump& p) {
  p.done = true;
  error_code ec;
  p.to->shutdown_send(ec);  // fails only when the peer is gone; its own pump will see that
  Pump& other = &p == &down_ ? up_ : down_;
  if (other.done) close();
}

void TcpProxyConnection::fail(Pump& p, bool reading, const error_code& ec) {
  // Reading from the client or writing to it: the client's side failed.
  const bool client_side = p.downstream == reading;
  SPDLOG_DEBUG("{}: {} {} failed: {}", peer_address_, client_side ? "downstream" : "upstream",
               reading ? "read" : "write", ec.message());
  if (client_side) {
    flags_ |= accesslog::kDownstreamConnectionTermination;
    abort_on_close(upstream_->transport());
  } else {
    flags_ |= accesslog::kUpstreamConnectionTermination;
    upstream_->endpoint().stats->resets.add();
    abort_on_close(transport_);
  }
  close();
}

void TcpProxyConnection::drain() {
  if (phase_ == Phase::kClosed) return;
  const auto t = worker_.snapshot_ptr()->config->drain.timeout;
  drain_deadline_ = std::min(drain_deadline_, Clock::now() + t);
  arm_timer();
}

void TcpProxyConnection::close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  const core::Ref<TcpProxyConnection> keep(this);  // cancel_timer() may drop the last other one
  const Clock::time_point now = Clock::now();
  if (log_this_ && logged_) write_log(now);
  lstats_->connections_active.sub();
  tstats_->connections_active.sub();
  cancel_timer();
  transport_.close();
  release_pipe(down_);
  release_pipe(up_);
  if (upstream_) {
    upstream_->set_owner(nullptr);
    cluster_->release(std::move(upstream_), false);  // closes it
  }
  worker_.remove_connection(this);
}

// ---- deadlines ----

Clock::time_point TcpProxyConnection::deadline() const {
  Clock::time_point d = drain_deadline_;
  switch (phase_) {
    case Phase::kHandshake:
    case Phase::kConnecting:
      return std::min(d, setup_deadline_);
    case Phase::kStreaming: {
      const config::Duration idle = listener_->config->idle_timeout;
      d = std::min(d, after(last_activity_, idle));
      for (const Pump* p : {&down_, &up_}) {
        if (p->writing) d = std::min(d, after(p->write_since, idle));
      }
      return d;
    }
    case Phase::kClosed:
      break;
  }
  return kNever;
}

void TcpProxyConnection::arm_timer() {
  core::arm_no_later(worker_.timers(), *this, *this, deadline());
}

void TcpProxyConnection::cancel_timer() { core::disarm(worker_.timers(), *this, *this); }

void TcpProxyConnection::on_expired() {
  const core::Ref<TcpProxyConnection> self(this, false);  // the armed entry's reference
  if (phase_ == Phase::kClosed) return;
  const Clock::time_point now = Clock::now();
  if (now >= deadline()) {
    on_timeout(now);
  } else {
    arm_timer();
  }
}

void TcpProxyConnection::on_timeout(Clock::time_point now) {
  if (now >= drain_deadline_) {
    SPDLOG_DEBUG("{}: drain timeout, closing", peer_address_);
    close();
    return;
  }
  switch (phase_) {
    case Phase::kHandshake:
      handshake_failed(boost::asio::error::timed_out);
      return;
    case Phase::kConnecting:
      connect_failed("timed out", true);
      return;
    case Phase::kStreaming:
      // Nothing moved in either direction, or a write made no progress, for
      // idle_timeout.
      SPDLOG_DEBUG("{}: idle timeout", peer_address_);
      flags_ |= accesslog::kStreamIdleTimeout;
      tstats_->idle_timeouts.add();
      close();
      return;
    case Phase::kClosed:
      return;
  }
}

// ---- the access log ----

void TcpProxyConnection::write_log(Clock::time_point now) {
  // `access_log.status` filters HTTP responses; a TCP connection has none
  // and is logged whatever it says (the listener's `access_log` turns it off).
  accesslog::Writer* log = worker_.access_log();
  accesslog::Entry e;
  e.start_time_us = start_wall_us_;
  e.duration_us = nanos(now - start_) / 1000;
  e.bytes_received = received_;
  e.bytes_sent = sent_;
  e.flags = flags_;
  e.status = 0;
  e.version_minor = accesslog::Entry::kNotHttp;
  if (upstream_) e.upstream_host = upstream_->endpoint().name();
  e.cluster = snapshot_->config->clusters[listener_->cluster].name;
  e.listener = listener_->config->name;
  e.remote_address = peer_address_;
  if (tls_ != nullptr) {
    e.tls_version = tls_->version;
    e.peer_subject = tls_->peer_subject;
    e.peer_uri_san = peer_uri_sans_;
    e.requested_server_name = tls_->server_name;
  }
  accesslog::Ring& ring = log->ring(worker_.index());
  char* p = ring.reserve(accesslog::encoded_size(e));
  if (p == nullptr) {
    worker_.stats().access_log_dropped.add();
    log->wake();
    return;
  }
  accesslog::encode(e, p);
  ring.commit();
  worker_.stats().access_log_lines.add();
  if (ring.used() > ring.capacity() / 2) log->wake();
}

}  // namespace sidecar::proxy
