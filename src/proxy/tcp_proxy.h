// One downstream connection of a `protocol: tcp` listener (Envoy's
// tcp_proxy network filter, haproxy's `mode tcp`): a new upstream connection
// to the listener's cluster (round robin), then the bytes copied both ways
// until both directions have ended. See docs/proxy.md "TCP proxy".
//
// Two pumps, one per direction, each with at most one write in flight: a
// pump reads again only once its write finished, so a slow reader slows its
// writer and a connection holds at most two buffers (16 KiB, doubling to
// 64 KiB while reads fill them; the upstream direction reads into the
// upstream connection's own buffer). When neither side has TLS and a
// direction turns out to be a bulk transfer (a read fills the 64 KiB buffer),
// its bytes move with splice(2) through a pipe from then on and never enter
// user space; chatty traffic (a cache's small requests) stays on the copy
// path, which costs less per message (bench/tcp.sh).
//
// Half close: the end of stream read on one side becomes a shutdown of the
// sending direction on the other (with TLS, close_notify first), and the
// other direction goes on; the connection closes when both have ended. An
// error (a reset) on one side resets the other (SO_LINGER 0), so a peer never
// takes a cut stream for a complete one.
//
// Deadlines (one lazily re-armed timer, as Http1ServerConnection): the TLS
// handshake of a TLS listener and the upstream connect each within the
// cluster's connect_timeout; no byte moving in either direction for the
// listener's idle_timeout, or a write pending that long; a drain's
// drain.timeout.
//
// Access log: one line per connection when it closes. Stats: the listener's
// (sidecar_downstream_connections_*), its TcpStats (sidecar_tcp_*) and the
// upstream endpoint's.
//
// Lifetime: reference counted (core/ref_counted.h); every pending operation
// holds a reference. Tracked by its worker for drain and shutdown. Used only
// on its worker's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/buffer.h"
#include "core/ref_counted.h"
#include "core/timer_queue.h"
#include "net/transport.h"
#include "proxy/snapshot.h"
#include "upstream/cluster.h"
#include "upstream/upstream_connection.h"

namespace sidecar::proxy {

class Worker;

class TcpProxyConnection final : public core::RefCounted<TcpProxyConnection>,
                                 public upstream::UpstreamCallbacks,
                                 private core::TimerEntry {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kBufferSize = 16 * 1024;     // bytes
  static constexpr size_t kMaxBufferSize = 64 * 1024;  // bytes

  // Whether plain-to-plain connections use splice(2). On unless the
  // environment has SIDECAR_TCP_SPLICE=0 (for bench/tcp.sh's comparison).
  static bool splice_enabled();

  TcpProxyConnection(Worker& worker, const ListenerRuntime& listener,
                     boost::asio::ip::tcp::socket socket,
                     const boost::asio::ip::tcp::endpoint& peer);
  ~TcpProxyConnection();

  void start();
  // The listener is draining or gone: the connection goes on for at most
  // drain.timeout, then is closed.
  void drain();
  // Closes both sides now.
  void close();

  config::Direction direction() const { return direction_; }
  const std::string& listener_name() const { return listener_->config->name; }

  // Intrusive list of the worker's TCP connections.
  TcpProxyConnection* prev = nullptr;
  TcpProxyConnection* next = nullptr;

  // A pipe for splice(2): its two ends, -1 when none.
  struct Pipe {
    int read = -1;
    int write = -1;
  };

  void on_upstream_connected(const boost::system::error_code& ec) override;
  // Unused: the pumps read the upstream transport themselves.
  void on_upstream_read(const boost::system::error_code&, size_t) override {}

 private:
  enum class Phase : uint8_t { kHandshake, kConnecting, kStreaming, kClosed };

  // One direction: bytes read from `from` and written to `to`.
  struct Pump {
    net::Transport* from = nullptr;
    net::Transport* to = nullptr;
    bool downstream = false;  // from the client (its bytes are "received")
    // Copy path.
    core::Buffer* buffer = nullptr;
    std::vector<boost::asio::const_buffer> out;
    bool last_read_filled = false;
    // splice(2) path: the pipe while bytes are in it.
    bool spliced = false;
    Pipe pipe;
    size_t in_pipe = 0;
    // State.
    bool writing = false;  // a write waits for the socket (since write_since)
    bool eof = false;      // `from` ended its stream
    bool done = false;     // ... and `to` was told (shutdown of its sending side)
    Clock::time_point write_since;
  };

  void on_handshake(const boost::system::error_code& ec);
  void handshake_failed(const boost::system::error_code& ec);
  void connect_upstream();
  void connect_failed(const std::string& why, bool timed_out);
  void start_pumps();

  // Copy path.
  void read(Pump& p);
  void on_read(Pump& p, const boost::system::error_code& ec, size_t bytes);
  void write(Pump& p);
  void on_written(Pump& p, const boost::system::error_code& ec);
  // splice(2) path.
  void splice_pump(Pump& p);
  // Returns `p`'s pipe to the worker's pool (closes it if bytes are left in it).
  void release_pipe(Pump& p);

  // Counts bytes read from / written to a side.
  void count_read(Pump& p, size_t bytes);
  void count_written(Pump& p, size_t bytes);
  // `p`'s source ended: pass the end on.
  void end_direction(Pump& p);
  // A read (`reading`) or write of `p` failed: DC or UC, the other side reset.
  void fail(Pump& p, bool reading, const boost::system::error_code& ec);

  Clock::time_point deadline() const;
  void arm_timer();
  // Disarms the entry and drops its reference: the caller must hold one.
  void cancel_timer();
  void on_expired() override;  // core::TimerEntry
  void on_timeout(Clock::time_point now);

  void write_log(Clock::time_point now);

  Worker& worker_;
  std::shared_ptr<const Snapshot> snapshot_;  // keeps listener_ alive
  const ListenerRuntime* listener_;
  const config::Direction direction_;
  net::Transport transport_;
  std::string peer_address_;  // ip:port, for the access log
  std::string peer_uri_sans_;
  const net::TlsInfo* tls_ = nullptr;  // after the TLS handshake
  stats::ListenerStats* lstats_;
  stats::TcpStats* tstats_;

  core::Ref<upstream::ClusterRuntime> cluster_;
  core::Ref<upstream::UpstreamConnection> upstream_;
  core::Buffer in_;  // downstream -> upstream (copy path)
  Pump down_;        // downstream -> upstream
  Pump up_;          // upstream -> downstream

  Phase phase_ = Phase::kHandshake;
  bool can_splice_ = false;  // plain TCP on both sides, and splice not turned off
  Clock::time_point start_;
  Clock::time_point last_activity_;
  Clock::time_point setup_deadline_;  // handshake or connect
  Clock::time_point drain_deadline_;

  // For the access log.
  bool log_this_ = false;
  bool logged_ = false;  // the connection got to the upstream connect: log it
  int64_t start_wall_us_ = 0;
  uint32_t flags_ = 0;  // accesslog::ResponseFlag
  uint64_t received_ = 0;
  uint64_t sent_ = 0;
};

}  // namespace sidecar::proxy
