#include "net/transport.h"

#include <cstring>

namespace sidecar::net {
namespace {

// The largest TLS record's payload [RFC 8446 5.1].
constexpr size_t kRecord = 16 * 1024;
// Spans up to this many bytes in all are written as one buffer.
constexpr size_t kGather = 1024;

void consume_spans(std::vector<const_buffer>& spans, size_t n) {
  size_t i = 0;
  while (i < spans.size() && n >= spans[i].size()) {
    n -= spans[i].size();
    ++i;
  }
  if (i < spans.size() && n > 0) spans[i] += n;
  spans.erase(spans.begin(), spans.begin() + static_cast<std::ptrdiff_t>(i));
}

class TlsCategory : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int ev) const override {
    static constexpr const char* kNames[] = {"none",
                                             "no client certificate",
                                             "bad certificate",
                                             "protocol mismatch",
                                             "timeout",
                                             "closed",
                                             "other"};
    const auto i = static_cast<size_t>(ev);
    return std::string("TLS handshake failed: ") + (i < std::size(kNames) ? kNames[i] : "other");
  }
};

}  // namespace

const boost::system::error_category& tls_category() {
  static const TlsCategory c;
  return c;
}

TlsError classify(const error_code& ec) {
  if (ec.category() == tls_category()) return static_cast<TlsError>(ec.value());
  if (ec == boost::asio::error::operation_aborted || ec == boost::asio::error::timed_out) {
    return TlsError::kTimeout;
  }
  if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) {
    return TlsError::kClosed;
  }
  return TlsError::kOther;
}

error_code Transport::io_error(Result r) const {
  if (r == Result::kClosed) return boost::asio::error::eof;
  if (const int e = secure_->sys_errno(); e != 0) {
    return error_code(e, boost::system::system_category());
  }
  return boost::asio::error::connection_reset;
}

#if !defined(BOOST_ASIO_HAS_IO_URING)
boost::asio::detail::reactor& Transport::reactor() {
  // Not cached across calls: a later io_context may reuse a destroyed one's
  // address (tests); the lookup is a short list walk.
  return boost::asio::use_service<boost::asio::detail::reactor>(
      boost::asio::query(socket_.get_executor(), boost::asio::execution::context));
}

bool Transport::enable_inq() {
  const int one = 1;
  return ::setsockopt(socket_.native_handle(), SOL_TCP, TCP_INQ, &one, sizeof(one)) == 0;
}
#endif

bool Transport::read_now(boost::asio::mutable_buffer buf, size_t& n, error_code& ec) {
  n = 0;
  if (!secure_) {
    n = socket_.read_some(buf, ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
      ec = {};
      return false;
    }
    return true;
  }
  const Result r = secure_->read(buf.data(), buf.size(), n);
  if (wants(r)) {
    read_want_ = r;
    return false;
  }
  read_want_ = Result::kWantRead;
  if (r != Result::kDone) ec = io_error(r);
  return true;
}

bool Transport::write_now(std::vector<const_buffer>& spans, error_code& ec) {
  if (!secure_) {
    while (!spans.empty()) {
      // One buffer goes out with send(2): sendmsg(2) costs the kernel a
      // msghdr and an iovec array more. A few small spans (a request head
      // and its added fields) are copied together for that.
      char gathered[kGather];
      const_buffer one = spans.front();
      if (spans.size() > 1) {
        size_t total = 0;
        for (const const_buffer& b : spans) total += b.size();
        if (total <= sizeof(gathered)) {
          size_t off = 0;
          for (const const_buffer& b : spans) {
            std::memcpy(gathered + off, b.data(), b.size());
            off += b.size();
          }
          one = const_buffer(gathered, total);
        }
      }
      const size_t n = spans.size() == 1 || one.data() == gathered ? socket_.write_some(one, ec)
                                                                   : socket_.write_some(spans, ec);
      if (ec) {
        if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) ec = {};
        return false;
      }
      consume_spans(spans, n);
    }
    return true;
  }
  // A record that could not be written whole earlier goes first. Its bytes
  // were already taken from `spans`.
  while (staged_off_ < staged_) {
    size_t n = 0;
    const Result r = secure_->write(staging_.get() + staged_off_, staged_ - staged_off_, n);
    if (r != Result::kDone) {
      if (wants(r)) {
        pending_want_ = r;
      } else {
        ec = io_error(r);
      }
      return false;
    }
    staged_off_ += n;
  }
  staging_.reset();
  staged_ = staged_off_ = 0;

  // Small spans (a head, a chunk) are gathered into one record; the copy is
  // cheap next to the encryption that copies anyway.
  static thread_local char scratch[kRecord];
  while (!spans.empty()) {
    const char* data = nullptr;
    size_t len = 0;
    bool gathered = false;
    if (spans[0].size() >= kRecord) {
      data = static_cast<const char*>(spans[0].data());
      len = spans[0].size();
    } else {
      for (const const_buffer& s : spans) {
        const size_t take = std::min(s.size(), kRecord - len);
        std::memcpy(scratch + len, s.data(), take);
        len += take;
        if (len == kRecord) break;
      }
      data = scratch;
      gathered = true;
    }
    size_t n = 0;
    const Result r = secure_->write(data, len, n);
    if (r != Result::kDone && !wants(r)) ec = io_error(r);
    if (gathered) {
      // Taken from the spans either way: what was not written is kept here.
      consume_spans(spans, len);
      if (n < len && !ec) {
        staged_ = len - n;
        staging_ = std::make_unique<char[]>(staged_);
        std::memcpy(staging_.get(), data + n, staged_);
        pending_want_ = r;
        return false;
      }
    } else {
      consume_spans(spans, n);
    }
    if (ec) return false;
    if (n == 0) {
      pending_want_ = r;
      return false;
    }
  }
  return true;
}

void Transport::shutdown_send(error_code& ec) {
  if (secure_) secure_->shutdown();
  socket_.shutdown(tcp::socket::shutdown_send, ec);
}

void Transport::close() {
  error_code ec;
  socket_.close(ec);
}

}  // namespace sidecar::net
