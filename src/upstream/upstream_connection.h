// One TCP connection from a worker to an upstream endpoint.
//
// The connection is a transport only: it owns the socket and the read
// buffer; the HTTP logic lives in its owner (the downstream connection it is
// checked out to). While it sits idle in its endpoint's pool, a wait for
// readability stays pending so that a close by the upstream is noticed at
// once and the connection is dropped from the pool instead of failing the
// next request.
//
// Memory: the read buffer is a block of the worker's pool (core/buffer.h),
// held only while bytes are buffered or expected into it: a read with
// nothing buffered waits for readability first, and an idle pooled
// connection gives its block back (release_buffer).
//
// Lifetime: reference counted; pending operations hold references. Used only
// on its worker's thread.
#pragma once

#include <chrono>
#include <cstdint>

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "core/buffer.h"
#include "core/ref_counted.h"
#include "net/transport.h"

namespace sidecar::upstream {

class ClusterRuntime;
class Endpoint;

// Events for the owner of a checked-out connection.
class UpstreamCallbacks {
 public:
  // The connect started by `UpstreamConnection::connect` finished (with the
  // TLS handshake on a TLS cluster; then tls_failure() says why it failed).
  virtual void on_upstream_connected(const boost::system::error_code& ec) = 0;
  // A read finished: `bytes` were appended to the connection's buffer, or
  // `ec` / bytes == 0 (end of stream) says why not.
  virtual void on_upstream_read(const boost::system::error_code& ec, size_t bytes) = 0;

 protected:
  ~UpstreamCallbacks() = default;
};

class UpstreamConnection : public core::RefCounted<UpstreamConnection> {
 public:
  // The read buffer starts at kBufferSize and doubles, up to kMaxBufferSize,
  // while reads keep filling it (large responses then take fewer system calls).
  static constexpr size_t kBufferSize = 16 * 1024;     // bytes
  static constexpr size_t kMaxBufferSize = 64 * 1024;  // bytes

  // `endpoint` belongs to `cluster`, which the connection keeps alive.
  UpstreamConnection(boost::asio::io_context& io, ClusterRuntime& cluster, Endpoint& endpoint);
  ~UpstreamConnection();

  // Connects to the endpoint (and runs the TLS handshake on a TLS cluster);
  // the result goes to the owner.
  void connect();
  // Starts a read into `buffer()` unless one is pending. Compacts the buffer
  // first when it has no free space (callers must not hold views into it
  // past its readable region's start when calling this with a full buffer).
  void read();
  // Idle in the pool: gives the read buffer back to the worker's pool (it
  // is taken again when bytes arrive). Called from the cluster's tick.
  void release_buffer();
  // Closes the socket; pending operations complete with operation_aborted and
  // no longer reach the owner.
  void close();

  bool is_open() const { return transport_.is_open() && !closed_; }
  bool connected() const { return connected_; }
  bool reading() const { return reading_; }
  net::Transport& transport() { return transport_; }
  // Why the TLS handshake failed ("certificate verify failed: hostname
  // mismatch"); "" when it did not.
  const std::string& tls_failure() const { return tls_failure_; }
  core::Buffer& buffer() { return in_; }
  Endpoint& endpoint() { return *endpoint_; }

  void set_owner(UpstreamCallbacks* owner) { owner_ = owner; }
  UpstreamCallbacks* owner() const { return owner_; }

  uint32_t requests = 0;  // requests sent on this connection
  std::chrono::steady_clock::time_point idle_since;

 private:
  void on_read(const boost::system::error_code& ec, size_t bytes);
  void on_readable(const boost::system::error_code& ec);
  void on_connected(boost::system::error_code ec);
  // The connect finished (or never will): no longer a pending request.
  void settle_pending();

  net::Transport transport_;
  std::string tls_failure_;
  core::Buffer in_;
  core::Ref<ClusterRuntime> cluster_;
  Endpoint* endpoint_;
  UpstreamCallbacks* owner_ = nullptr;
  bool reading_ = false;
  bool waiting_ = false;  // the pending read is a wait for readability (no buffer)
  bool last_read_filled_ = false;
  bool connected_ = false;
  bool closed_ = false;
  bool pending_ = true;            // counted in the breaker's pending requests
  bool breaker_released_ = false;  // no longer counted in its connections
};

}  // namespace sidecar::upstream
