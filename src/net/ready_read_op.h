// A read that takes its buffer only when bytes are there, as an operation of
// Boost.Asio's epoll reactor (Transport::async_read_into's plain TCP path).
//
// Why not async_wait + a read: Asio re-arms the descriptor with
// epoll_ctl(EPOLL_CTL_MOD) for every async_wait (a wait cannot tell whether
// the socket was drained, so it must ask the kernel again), one system call
// per response on a busy connection. Why not async_read_some: its buffer is
// held while the connection waits (an idle connection holds none here), and
// it reports the socket drained only on a 0-byte read, so the next read
// starts with a recv that fails with EAGAIN.
//
// This operation reads when the reactor says the socket may be readable;
// the buffer is reserved just before and given back if nothing came. With
// TCP_INQ (Linux 4.18, set once per socket), recvmsg tells how many bytes
// are still queued after the read, and a non-zero count once the peer's FIN
// arrived (tcp_inq_hint). Zero means drained: the operation reports
// done_and_exhausted, the next read is queued without a system call, and
// the edge-triggered registration (EPOLLET, made once by Asio) reports the
// next arrival. A short read alone would not do: a FIN that came with the
// last bytes is taken by that read and raises no further edge. Anything
// else (more queued, a FIN, no TCP_INQ) reports done, and the next read is
// tried at once, as Asio's own reads are.
//
// Only for the epoll reactor (Asio's default on Linux); the io_uring build
// (SIDECAR_IO_URING) uses async_wait + read instead. Internal to net/.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "core/small_alloc.h"

namespace sidecar::net::detail {

namespace ad = boost::asio::detail;

// Reaches the reactor state of an Asio socket (protected in basic_socket):
// a pointer to a protected member named through a derived class is legal.
struct SocketAccess : boost::asio::ip::tcp::socket {
  static auto& implementation(boost::asio::ip::tcp::socket& s) {
    return (s.*(&SocketAccess::impl_)).get_implementation();
  }
};

// Buffer: core::Buffer's shape (reserve, release, write_ptr, write_space).
template <typename Buffer, typename Handler>
class ReadyReadOp : public ad::reactor_op {
 public:
  // inq: TCP_INQ is on for the socket.
  ReadyReadOp(int fd, bool inq, Buffer& buffer, size_t size, Handler& handler)
      : ad::reactor_op(boost::system::error_code(), &ReadyReadOp::do_perform,
                       &ReadyReadOp::do_complete),
        fd_(fd),
        inq_(inq),
        buffer_(buffer),
        size_(size),
        handler_(std::move(handler)) {}

  static status do_perform(ad::reactor_op* base) {
    auto* o = static_cast<ReadyReadOp*>(base);
    o->buffer_.reserve(o->size_);
    const size_t space = o->buffer_.write_space();
    if (space == 0) {  // not an end of stream: the caller gave a full buffer
      o->ec_ = boost::asio::error::no_buffer_space;
      return done;
    }
    iovec iov{o->buffer_.write_ptr(), space};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    for (;;) {
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      if (o->inq_) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
      }
      const ssize_t n = ::recvmsg(o->fd_, &msg, 0);
      if (n > 0) {
        o->bytes_transferred_ = static_cast<size_t>(n);
        return o->inq_ && queued_after(msg) == 0 ? done_and_exhausted : done;
      }
      if (n == 0) {
        o->ec_ = boost::asio::error::eof;
        return done;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        o->buffer_.release();  // woken for nothing: wait without the block
        return not_done;
      }
      o->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
      return done;
    }
  }

  // TCP_CM_INQ of a read; -1 without it.
  static int queued_after(msghdr& msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ) {
        int inq = 0;
        std::memcpy(&inq, CMSG_DATA(c), sizeof(inq));
        return inq;
      }
    }
    return -1;
  }

  static void do_complete(void* owner, ad::operation* base, const boost::system::error_code&,
                          size_t) {
    auto* o = static_cast<ReadyReadOp*>(base);
    // The operation's memory is given back before the handler runs (it may
    // start the next read); the handler is moved out first.
    Handler handler(std::move(o->handler_));
    const boost::system::error_code ec = o->ec_;
    const size_t n = o->bytes_transferred_;
    o->~ReadyReadOp();
    core::small_free(o);
    if (owner != nullptr) handler(ec, n);  // null: the io_context is being destroyed
  }

 private:
  int fd_;
  bool inq_;
  Buffer& buffer_;
  size_t size_;
  Handler handler_;
};

}  // namespace sidecar::net::detail
