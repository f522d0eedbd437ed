#include "upstream/upstream_connection.h"

#include <boost/asio/error.hpp>

#include "tls/tls.h"
#include "upstream/cluster.h"

namespace sidecar::upstream {

UpstreamConnection::UpstreamConnection(boost::asio::io_context& io, ClusterRuntime& cluster,
                                       Endpoint& endpoint)
    : transport_(boost::asio::ip::tcp::socket(io)), cluster_(&cluster), endpoint_(&endpoint) {
  endpoint_->stats->connections_active.add();
  endpoint_->stats->connections_total.add();
  // Circuit breaker counts: open connections, and the request waiting for
  // this one until its connect completes.
  cluster_->breaker().add(CircuitBreaker::kConnections);
  cluster_->breaker().add(CircuitBreaker::kPendingRequests);
}

UpstreamConnection::~UpstreamConnection() {
  endpoint_->stats->connections_active.sub();
  settle_pending();
  if (!breaker_released_) cluster_->breaker().sub(CircuitBreaker::kConnections);
}

void UpstreamConnection::settle_pending() {
  if (pending_) {
    pending_ = false;
    cluster_->breaker().sub(CircuitBreaker::kPendingRequests);
  }
}

void UpstreamConnection::connect() {
  transport_.socket().async_connect(
      endpoint_->address(),
      [self = core::Ref<UpstreamConnection>(this)](boost::system::error_code ec) {
        self->settle_pending();
        if (self->closed_) return;
        if (ec) {
          if (self->owner_ != nullptr) self->owner_->on_upstream_connected(ec);
          return;
        }
        auto& socket = self->transport_.socket();
        socket.set_option(boost::asio::ip::tcp::no_delay(true), ec);
        socket.non_blocking(true, ec);
        const tls::ClientSlot* slot = self->cluster_->tls();
        if (slot == nullptr) {
          self->on_connected({});
          return;
        }
        auto context = slot->get();
        self->transport_.set_secure(context->new_session(
            socket.native_handle(), self->endpoint_->host_name(), &self->endpoint_->tls_session));
        self->transport_.async_handshake(
            [self](const boost::system::error_code& hec) { self->on_connected(hec); });
      });
}

void UpstreamConnection::on_connected(boost::system::error_code ec) {
  if (closed_) return;
  if (ec) {
    const net::SecureLayer* secure = transport_.secure();
    tls_failure_ = secure != nullptr && !secure->failure_reason().empty() ? secure->failure_reason()
                                                                          : ec.message();
  } else {
    connected_ = true;
  }
  if (owner_ != nullptr) owner_->on_upstream_connected(ec);
}

void UpstreamConnection::read() {
  if (reading_ || closed_) return;
  if (in_.empty() && !last_read_filled_) {
    // Nothing buffered and the socket was drained by the last read: wait
    // for it without a buffer (no speculative recv either). After a read
    // that filled the buffer (a large response), more is likely there: read
    // at once, into a buffer grown as before. Idle in the pool, the block is
    // given back later (release_buffer, from the cluster's tick): the stream
    // that just returned this connection may still look at views of its
    // response. A buffer grown for large responses stays while the
    // connection is checked out.
    if (owner_ != nullptr && in_.capacity() <= core::BufferPool::kBlockSize) in_.release();
    reading_ = true;
    waiting_ = true;
    transport_.async_wait_readable(
        [self = core::Ref<UpstreamConnection>(this)](const boost::system::error_code& ec) {
          self->on_readable(ec);
        });
    return;
  }
  if (!in_.has_storage()) in_.reserve(kBufferSize);
  if (last_read_filled_ && in_.empty() && in_.capacity() < kMaxBufferSize) {
    in_.reserve(in_.capacity() * 2);
  }
  if (in_.write_space() == 0) in_.compact();
  if (in_.write_space() == 0) in_.reserve(in_.capacity() * 2);
  reading_ = true;
  last_read_filled_ = false;
  transport_.async_read_some(
      boost::asio::buffer(in_.write_ptr(), in_.write_space()),
      [self = core::Ref<UpstreamConnection>(this)](const boost::system::error_code& ec, size_t n) {
        self->on_read(ec, n);
      });
}

void UpstreamConnection::on_readable(const boost::system::error_code& ec) {
  waiting_ = false;
  if (closed_) {
    reading_ = false;
    return;
  }
  if (ec) {
    on_read(ec, 0);
    return;
  }
  in_.reserve(kBufferSize);
  size_t n = 0;
  boost::system::error_code rec;
  if (!transport_.read_now(boost::asio::buffer(in_.write_ptr(), in_.write_space()), n, rec)) {
    reading_ = false;
    read();  // woken for nothing (or TLS bytes that are not a record yet)
    return;
  }
  if (rec) {
    on_read(rec, 0);
    return;
  }
  on_read(rec, n);
}

void UpstreamConnection::release_buffer() {
  // Not while a read into the buffer is pending (only a wait may be).
  if (owner_ == nullptr && !closed_ && (!reading_ || waiting_)) in_.release();
}

void UpstreamConnection::on_read(const boost::system::error_code& ec, size_t bytes) {
  reading_ = false;
  if (closed_) return;
  if (!ec) {
    last_read_filled_ = in_.write_space() == bytes;
    in_.commit(bytes);
  }
  if (owner_ != nullptr) {
    owner_->on_upstream_read(ec, bytes);
    return;
  }
  // Idle in the pool: the upstream closed it, or sent bytes nobody asked
  // for. Either way it cannot carry another request.
  ClusterRuntime::remove_idle(*this);
}

void UpstreamConnection::close() {
  if (closed_) return;
  closed_ = true;
  owner_ = nullptr;
  transport_.close();
  settle_pending();
  breaker_released_ = true;
  cluster_->breaker().sub(CircuitBreaker::kConnections);
}

}  // namespace sidecar::upstream
