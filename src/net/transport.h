// The transport under a codec (Envoy's "transport socket"): plain TCP, or
// TLS over it. The HTTP code reads and writes through a Transport and does
// not know which one it has.
//
// Plain TCP is the socket itself: every call forwards to Boost.Asio, so the
// plain path costs one predictable branch. TLS is a SecureLayer (implemented
// by tls::Session on OpenSSL, SSL_set_fd on the same non-blocking socket):
// records are read and written with SSL_read/SSL_write when they can be, and
// the socket's readiness is awaited with async_wait when OpenSSL wants it.
//
// Semantics shared by both (those of the Asio calls they replace):
//   - async_read_some completes with at least one byte, an error, or
//     (0, eof) at the end of the stream; never inline (from the initiating
//     call);
//   - write_now writes what the transport takes at once and never waits;
//   - async_write writes everything, then completes.
// The spans given to write_now/async_write must stay valid and unchanged
// until the write completes. TLS copies small spans into one record
// (fewer records, fewer system calls) and writes large spans directly.
//
// Thread safety: none; a transport lives on one worker thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace sidecar::net {

using boost::asio::const_buffer;
using boost::asio::ip::tcp;
using error_code = boost::system::error_code;

// Facts about a TLS connection, for the access log, headers and metrics.
struct TlsInfo {
  std::string version;       // "TLSv1.3"
  std::string server_name;   // SNI asked by the client (server side) or sent (client side)
  std::string alpn;          // negotiated protocol, "" when none
  std::string peer_subject;  // RFC 2253 subject of the peer certificate, "" when none
  std::vector<std::string> peer_uri_sans;
  std::vector<std::string> peer_dns_sans;
  std::string peer_cert_sha256;  // hex of the DER, "" when no peer certificate
  bool resumed = false;
};

// The TLS half of a transport. Each call makes progress without blocking;
// `want` says what the socket must become before the call is retried.
class SecureLayer {
 public:
  enum class Want { kNone, kRead, kWrite };
  virtual ~SecureLayer() = default;
  // Continues the handshake: true when done; false with `want` set (retry)
  // or `ec` set (failed; message() says why).
  virtual bool handshake(Want& want, error_code& ec) = 0;
  // Up to `n` bytes; 0 with `want` kNone and `ec` = eof at the end of the
  // stream (close_notify or the peer's close).
  virtual size_t read(void* buf, size_t n, Want& want, error_code& ec) = 0;
  // Up to `n` bytes of `buf` (one or more records); 0 with `want` or `ec`.
  virtual size_t write(const void* buf, size_t n, Want& want, error_code& ec) = 0;
  // Sends close_notify, best effort, without waiting.
  virtual void shutdown() = 0;
  // Valid after the handshake.
  virtual const TlsInfo& info() const = 0;
  // Why the handshake failed, for a 503 body or the log ("certificate
  // verify failed: hostname mismatch").
  virtual std::string failure_reason() const = 0;
};

class Transport {
 public:
  explicit Transport(tcp::socket socket) : socket_(std::move(socket)) {}
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  tcp::socket& socket() { return socket_; }
  // Adds TLS over the (connected) socket; before any I/O.
  void set_secure(std::unique_ptr<SecureLayer> secure) { secure_ = std::move(secure); }
  SecureLayer* secure() const { return secure_.get(); }
  bool is_open() const { return socket_.is_open(); }

  // TLS: runs the handshake, then handler(ec). Plain: posts handler({}).
  template <typename Handler>
  void async_handshake(Handler handler) {
    if (!secure_) {
      boost::asio::post(socket_.get_executor(), [h = std::move(handler)]() mutable { h({}); });
      return;
    }
    continue_handshake(std::move(handler), true);
  }

  // handler(ec, bytes) with bytes read into `buf`.
  template <typename Handler>
  void async_read_some(boost::asio::mutable_buffer buf, Handler handler) {
    if (!secure_) {
      socket_.async_read_some(buf, std::move(handler));
      return;
    }
    continue_read(buf, std::move(handler), true);
  }

  // Writes what the transport takes now, consuming `spans` as they go.
  // True when all of it was written; false with `ec` clear when the rest
  // must wait for the socket, or with `ec` set on failure.
  bool write_now(std::vector<const_buffer>& spans, error_code& ec);

  // Writes all of `spans` (consumed as they go), then handler(ec).
  template <typename Handler>
  void async_write(std::vector<const_buffer>& spans, Handler handler) {
    if (!secure_) {
      boost::asio::async_write(
          socket_, spans,
          [h = std::move(handler)](const error_code& ec, size_t) mutable { h(ec); });
      return;
    }
    continue_write(spans, std::move(handler));
  }

  // Ends the sending direction: TLS close_notify, then a TCP half close.
  void shutdown_send(error_code& ec);
  // Closes the socket; pending operations complete with operation_aborted.
  void close();

 private:
  using Want = SecureLayer::Want;

  void wait(Want want, auto&& then) {
    socket_.async_wait(want == Want::kWrite ? tcp::socket::wait_write : tcp::socket::wait_read,
                       std::forward<decltype(then)>(then));
  }

  template <typename Handler>
  void continue_handshake(Handler handler, bool initiating) {
    Want want = Want::kNone;
    error_code ec;
    if (!secure_->handshake(want, ec) && !ec) {
      wait(want, [this, h = std::move(handler)](const error_code& wec) mutable {
        if (wec) {
          h(wec);
          return;
        }
        continue_handshake(std::move(h), false);
      });
      return;
    }
    complete(std::move(handler), initiating, ec);
  }

  template <typename Handler>
  void continue_read(boost::asio::mutable_buffer buf, Handler handler, bool initiating) {
    Want want = Want::kNone;
    error_code ec;
    const size_t n = secure_->read(buf.data(), buf.size(), want, ec);
    if (n == 0 && !ec) {
      wait(want, [this, buf, h = std::move(handler)](const error_code& wec) mutable {
        if (wec) {
          h(wec, 0);
          return;
        }
        continue_read(buf, std::move(h), false);
      });
      return;
    }
    complete(std::move(handler), initiating, ec, n);
  }

  template <typename Handler>
  void continue_write(std::vector<const_buffer>& spans, Handler handler) {
    error_code ec;
    if (write_now(spans, ec) || ec) {
      boost::asio::post(socket_.get_executor(), [h = std::move(handler), ec]() mutable { h(ec); });
      return;
    }
    wait(pending_want_, [this, &spans, h = std::move(handler)](const error_code& wec) mutable {
      if (wec) {
        h(wec);
        return;
      }
      continue_write(spans, std::move(h));
    });
  }

  // Completes at once when called back by the reactor, else posted (a
  // handler never runs inside the call that started the operation).
  template <typename Handler, typename... Args>
  void complete(Handler handler, bool initiating, Args... args) {
    if (!initiating) {
      handler(args...);
      return;
    }
    boost::asio::post(socket_.get_executor(),
                      [h = std::move(handler), args...]() mutable { h(args...); });
  }

  tcp::socket socket_;
  std::unique_ptr<SecureLayer> secure_;
  // TLS writes: small spans are copied here to go out as one record.
  std::unique_ptr<char[]> staging_;
  size_t staged_ = 0;      // bytes in staging_
  size_t staged_off_ = 0;  // ... of which written
  Want pending_want_ = Want::kNone;
};

}  // namespace sidecar::net
