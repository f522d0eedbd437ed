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
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "net/ready_read_op.h"

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

// Why a TLS handshake failed, for sidecar_tls_handshake_errors_total{reason}
// (stats::kTlsErrors names them in this order, from kNoClientCertificate).
enum class TlsError : uint8_t {
  kNone,
  kNoClientCertificate,
  kBadCertificate,  // the peer's certificate failed verification (CA, SAN, expiry)
  kProtocol,        // version, cipher or ALPN mismatch; not TLS at all
  kTimeout,         // the handshake did not finish within its deadline
  kClosed,          // the peer closed or reset during the handshake
  kOther,
};
// The category of handshake errors: an error_code's value is a TlsError.
const boost::system::error_category& tls_category();
// The reason of a failed handshake's error (kTimeout for timed_out, kClosed
// for eof and resets, kOther for anything else).
TlsError classify(const error_code& ec);

// The TLS half of a transport (implemented by libsidecar-tls.so on
// OpenSSL). Each call makes progress without blocking; kWantRead/kWantWrite
// say what the socket must become before the call is retried. No Asio type
// crosses this interface (the implementation lives in a shared object).
class SecureLayer {
 public:
  enum class Result : uint8_t { kDone, kWantRead, kWantWrite, kClosed, kFailed };
  virtual ~SecureLayer() = default;
  // Continues the handshake; kFailed: handshake_error() and
  // failure_reason() say why.
  virtual Result handshake() = 0;
  virtual TlsError handshake_error() const = 0;
  // kDone with `done` > 0 bytes read; kClosed at the end of the stream
  // (close_notify or the peer's close); kFailed: sys_errno() (0: a TLS error).
  virtual Result read(void* buf, size_t n, size_t& done) = 0;
  // kDone with `done` > 0 bytes of `buf` written (one or more records).
  virtual Result write(const void* buf, size_t n, size_t& done) = 0;
  virtual int sys_errno() const = 0;
  // Sends close_notify, best effort, without waiting.
  virtual void shutdown() = 0;
  // Whether bytes already received from the socket wait inside the layer (a
  // read may make progress without the socket becoming readable).
  virtual bool has_pending() const = 0;
  // Valid after the handshake.
  virtual const TlsInfo& info() const = 0;
  // Why the handshake failed ("certificate verify failed: hostname mismatch").
  virtual std::string failure_reason() const = 0;
};

class Transport {
 public:
  explicit Transport(tcp::socket socket) : socket_(std::move(socket)) {}
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  // Moves a connection to another owner (HTTP/1.1 handing over to HTTP/2);
  // only with no operation in progress.
  Transport(Transport&&) = default;

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

  // Waits until a read may make progress, with no buffer (an idle
  // connection holds none): handler(ec), never inline. Plain: the socket is
  // readable (no speculative recv). TLS: at once when the layer holds bytes
  // already, else when the socket is ready for what the last read wanted.
  template <typename Handler>
  void async_wait_readable(Handler handler) {
    if (secure_ && secure_->has_pending()) {
      boost::asio::post(socket_.get_executor(), [h = std::move(handler)]() mutable { h({}); });
      return;
    }
    const bool write = secure_ && read_want_ == Result::kWantWrite;
    socket_.async_wait(write ? tcp::socket::wait_write : tcp::socket::wait_read,
                       std::move(handler));
  }

  // Waits for bytes with no buffer held, then reads them into `in` (a
  // core::Buffer; empty): `size` bytes are reserved from its pool only when
  // bytes are there, and given back when a wake-up found none, so a
  // connection waiting here holds no buffer. handler(ec, n): n > 0 bytes at
  // in.write_ptr(), not committed yet; eof at the end of the stream; never
  // inline. Plain TCP: one recv per arrival and no epoll_ctl per wait
  // (ready_read_op.h says why). TLS: async_wait_readable, then read_now.
  //
  // The read happens as soon as the socket turns readable, inside the
  // reactor's turn: a message that arrives in several segments (a response
  // head, then its body) is read in several calls. Upstream connections
  // therefore wait with async_wait_readable and read in their own turn, by
  // when the rest has usually come (one epoll_ctl, fewer reads); the
  // listeners' connections, whose requests come in one segment, use this.
  template <typename Buffer, typename Handler>
  void async_read_into(Buffer& in, size_t size, Handler handler) {
#if !defined(BOOST_ASIO_HAS_IO_URING)
    if (!secure_) {
      start_ready_read(in, size, std::move(handler));
      return;
    }
#endif
    async_wait_readable([this, &in, size, h = std::move(handler)](const error_code& ec) mutable {
      if (ec) {
        h(ec, 0);
        return;
      }
      in.reserve(size);
      size_t n = 0;
      error_code rec;
      if (!read_now(boost::asio::buffer(in.write_ptr(), in.write_space()), n, rec)) {
        in.release();  // woken for nothing (or TLS bytes that are not a record yet)
        async_read_into(in, size, std::move(h));
        return;
      }
      h(rec, n);
    });
  }

  // Reads what is there now, without waiting. True with `n` > 0 bytes in
  // `buf`, or with `ec` set (eof at the end of the stream); false when
  // nothing is there yet (then async_wait_readable).
  bool read_now(boost::asio::mutable_buffer buf, size_t& n, error_code& ec);

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
  using Result = SecureLayer::Result;

  static bool wants(Result r) { return r == Result::kWantRead || r == Result::kWantWrite; }
  void wait(Result want, auto&& then) {
    socket_.async_wait(
        want == Result::kWantWrite ? tcp::socket::wait_write : tcp::socket::wait_read,
        std::forward<decltype(then)>(then));
  }
  // The error_code of a failed read or write.
  error_code io_error(Result r) const;

#if !defined(BOOST_ASIO_HAS_IO_URING)
  // The epoll reactor of this socket's io_context.
  boost::asio::detail::reactor& reactor();
  // Turns TCP_INQ on for the socket; false where the kernel has none.
  bool enable_inq();

  template <typename Buffer, typename Handler>
  void start_ready_read(Buffer& in, size_t size, Handler handler) {
    using Op = detail::ReadyReadOp<Buffer, Handler>;
    auto& impl = detail::SocketAccess::implementation(socket_);
    error_code ec;
    if ((impl.state_ & boost::asio::detail::socket_ops::non_blocking) == 0 &&
        !boost::asio::detail::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true,
                                                                    ec)) {
      boost::asio::post(socket_.get_executor(),
                        [h = std::move(handler), ec]() mutable { h(ec, 0); });
      return;
    }
    if (inq_ < 0) inq_ = enable_inq() ? 1 : 0;
    // Its memory from core::small_alloc's per-thread free lists: a worker's
    // reads complete in bursts, which Asio's two-slot cache mostly misses.
    static_assert(sizeof(Op) <= core::kMaxSmall && alignof(Op) <= 16);
    void* mem = core::small_alloc(sizeof(Op));
    if (mem == nullptr) throw std::bad_alloc();
    Op* op = new (mem) Op(impl.socket_, inq_ == 1, in, size, handler);
    reactor().start_op(boost::asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_, op,
                       false, true);
  }
#endif

  template <typename Handler>
  void continue_handshake(Handler handler, bool initiating) {
    const Result r = secure_->handshake();
    if (wants(r)) {
      wait(r, [this, h = std::move(handler)](const error_code& wec) mutable {
        if (wec) {
          h(wec);
          return;
        }
        continue_handshake(std::move(h), false);
      });
      return;
    }
    error_code ec;
    if (r != Result::kDone) {
      ec = error_code(static_cast<int>(secure_->handshake_error()), tls_category());
    }
    complete(std::move(handler), initiating, ec);
  }

  template <typename Handler>
  void continue_read(boost::asio::mutable_buffer buf, Handler handler, bool initiating) {
    size_t n = 0;
    const Result r = secure_->read(buf.data(), buf.size(), n);
    if (wants(r)) {
      wait(r, [this, buf, h = std::move(handler)](const error_code& wec) mutable {
        if (wec) {
          h(wec, 0);
          return;
        }
        continue_read(buf, std::move(h), false);
      });
      return;
    }
    complete(std::move(handler), initiating, r == Result::kDone ? error_code() : io_error(r), n);
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
  Result pending_want_ = Result::kWantWrite;
  Result read_want_ = Result::kWantRead;  // what the last read_now waited for
  int8_t inq_ = -1;                       // TCP_INQ: -1 not tried yet, 0 unavailable, 1 on
};

}  // namespace sidecar::net
