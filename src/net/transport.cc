#include "net/transport.h"

#include <cstring>

namespace sidecar::net {
namespace {

// The largest TLS record's payload [RFC 8446 5.1].
constexpr size_t kRecord = 16 * 1024;

void consume_spans(std::vector<const_buffer>& spans, size_t n) {
  size_t i = 0;
  while (i < spans.size() && n >= spans[i].size()) {
    n -= spans[i].size();
    ++i;
  }
  if (i < spans.size() && n > 0) spans[i] += n;
  spans.erase(spans.begin(), spans.begin() + static_cast<std::ptrdiff_t>(i));
}

}  // namespace

bool Transport::write_now(std::vector<const_buffer>& spans, error_code& ec) {
  if (!secure_) {
    while (!spans.empty()) {
      const size_t n = socket_.write_some(spans, ec);
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
    Want want = Want::kNone;
    const size_t n = secure_->write(staging_.get() + staged_off_, staged_ - staged_off_, want, ec);
    if (n == 0) {
      pending_want_ = want;
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
    Want want = Want::kNone;
    const size_t n = secure_->write(data, len, want, ec);
    if (gathered) {
      // Taken from the spans either way: what was not written is kept here.
      consume_spans(spans, len);
      if (n < len && !ec) {
        staged_ = len - n;
        staging_ = std::make_unique<char[]>(staged_);
        std::memcpy(staging_.get(), data + n, staged_);
        pending_want_ = want;
        return false;
      }
    } else {
      consume_spans(spans, n);
    }
    if (ec) return false;
    if (n == 0) {
      pending_want_ = want;
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
