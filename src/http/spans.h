// Output built as a list of spans (an iovec for one writev): heads are
// forwarded as views of the read buffer, with the few lines the proxy adds
// appended from its own strings.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

namespace sidecar::http {

// Appends a span, merged into the previous one when they are contiguous.
inline void add_span(std::vector<boost::asio::const_buffer>& out, const char* p, size_t n) {
  if (n == 0) return;
  if (!out.empty()) {
    boost::asio::const_buffer& last = out.back();
    if (static_cast<const char*>(last.data()) + last.size() == p) {
      last = boost::asio::const_buffer(last.data(), last.size() + n);
      return;
    }
  }
  out.emplace_back(p, n);
}

inline void add_span(std::vector<boost::asio::const_buffer>& out, std::string_view s) {
  add_span(out, s.data(), s.size());
}

// Chunked framing [RFC 9112 7.1] for body spans of unknown total length.
class ChunkEncoder {
 public:
  // Appends `body` to `out` as chunks (empty spans skipped), and the last
  // chunk when `end`. The framing bytes live here until the next call.
  void encode(const std::vector<boost::asio::const_buffer>& body, bool end,
              std::vector<boost::asio::const_buffer>& out) {
    lines_.clear();
    // Written whole before any span points into it (it must not move).
    lines_.reserve(body.size() * 20 + 8);
    offsets_.clear();
    for (const auto& b : body) {
      if (b.size() == 0) continue;
      offsets_.push_back(lines_.size());
      append_hex(b.size());
      lines_.append("\r\n");
    }
    const size_t crlf = lines_.size();
    lines_.append("\r\n0\r\n\r\n");
    size_t k = 0;
    for (const auto& b : body) {
      if (b.size() == 0) continue;
      const size_t begin = offsets_[k];
      const size_t len = (k + 1 < offsets_.size() ? offsets_[k + 1] : crlf) - begin;
      add_span(out, lines_.data() + begin, len);
      add_span(out, static_cast<const char*>(b.data()), b.size());
      add_span(out, lines_.data() + crlf, 2);
      ++k;
    }
    if (end && trailers_.empty()) {
      add_span(out, lines_.data() + crlf + 2, 5);
    } else if (end) {
      add_span(out, lines_.data() + crlf + 2, 3);  // the last chunk, then the trailer section
      add_span(out, trailers_);
      add_span(out, lines_.data() + crlf + 5, 2);
    }
  }
  // Trailer fields for the last chunk, as "name: value\r\n" lines
  // [RFC 9112 7.1.2]; "" for none. Set per message (they stay until
  // replaced: the spans of the last chunk point into them).
  void set_trailers(std::string lines) { trailers_ = std::move(lines); }

 private:
  void append_hex(size_t n) {
    char buf[16];
    size_t i = sizeof(buf);
    do {
      buf[--i] = "0123456789abcdef"[n & 15];
      n >>= 4;
    } while (n != 0);
    lines_.append(buf + i, sizeof(buf) - i);
  }
  std::string lines_;
  std::vector<size_t> offsets_;
  std::string trailers_;
};

}  // namespace sidecar::http
