// The HTTP/2 server codec's DownstreamCodec side: the request body handed
// to the stream, the response submitted to nghttp2, and the writing: one
// write per connection per event-loop turn for all its streams, and the
// deferred RST_STREAM(NO_ERROR) after a complete response.
#include <algorithm>
#include <charconv>
#include <cstring>

#include <nghttp2/nghttp2.h>
#include <boost/asio/post.hpp>

#include "core/coarse_clock.h"
#include "http/spans.h"
#include "proxy/http2_common.h"
#include "proxy/http2_server.h"
#include "proxy/http2_server_stream.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

using Clock = Http2ServerConnection::Clock;
using h2::Fields;
using h2::hop_by_hop;
using h2::lower;

namespace {

constexpr size_t kMaxOutput = 64 * 1024;  // bytes gathered from nghttp2 per write
constexpr size_t kOutputBlock = core::BufferPool::kBlockSize;

// The header list of the response being submitted (nghttp2 copies it).
thread_local h2::NvList response_nv;

// ":status" as three digits in `buf`.
std::string_view status_code(int status, char (&buf)[8]) {
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, status);
  return std::string_view(buf, static_cast<size_t>(end - buf));
}

}  // namespace

// ---- DownstreamCodec: the request body ----

BodyBatch Http2ServerConnection::request_body(Stream& s, Spans& out, bool) {
  BodyBatch b;
  H2Stream* h = of(s);
  if (h == nullptr) {
    b.end = true;
    return b;
  }
  if (!h->body.empty()) http::add_span(out, h->body.data(), h->body.size());
  b.consumed = h->body.size();
  b.end = h->remote_end;
  if (b.end && !h->request_trailers.empty()) b.trailers = &h->request_trailers;
  return b;
}

void Http2ServerConnection::consume_request_body(Stream& s, size_t bytes) {
  H2Stream* h = of(s);
  if (h == nullptr || bytes == 0) return;
  bytes = std::min(bytes, h->body.size());
  h->body.erase(0, bytes);
  nghttp2_session_consume(session_, h->id, bytes);
  schedule();
}

void Http2ServerConnection::await_request_body(Stream& s) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  if (h->remote_end || !h->body.empty()) {
    h->ev_body = true;
    events_.push_back(h->id);
    schedule();
    return;
  }
  h->awaiting_body = true;
}

// ---- DownstreamCodec: the response ----

void Http2ServerConnection::submit_response(H2Stream& h, h2::NvList& nva, const Spans& body,
                                            bool end, bool has_body) {
  static const Spans kNoBody;
  h.out.set(has_body ? body : kNoBody, end);  // both lvalues: no copy of the spans
  h.out.deferred = false;
  if (has_body) {
    h.out.write_outstanding = true;
  } else {
    written(h);  // the HEADERS frame ends the stream: nothing more to write
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &h;
  provider.read_callback = h2server::cb_read;
  nghttp2_submit_response(session_, h.id, nva.data(), nva.size(), has_body ? &provider : nullptr);
  schedule();  // flushed once at the end of this event loop turn
}

void Http2ServerConnection::written(H2Stream& h) {
  h.ev_written = true;
  events_.push_back(h.id);
}

void Http2ServerConnection::send_interim(Stream& s, const http::ResponseHead& head) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  Fields fields;
  for (const http::HeaderField& f : head.headers) {
    std::string name = lower(f.name);
    if (!hop_by_hop(name)) fields.emplace_back(std::move(name), std::string(f.value));
  }
  const std::string code = std::to_string(head.status);
  const std::vector<nghttp2_nv> nva = h2::to_nv(":status", code, fields);
  nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, h->id, nullptr, nva.data(), nva.size(),
                         nullptr);
  written(*h);
  schedule();  // flushed once at the end of this event loop turn
}

void Http2ServerConnection::send_response(Stream& s, const OutgoingResponse& o, Spans& body, bool,
                                          bool end) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  const http::ResponseHead* r = o.response;
  int status = o.status;
  if (status == 0 && r != nullptr) status = r->status;
  // The upstream switched to the protocol of an extended CONNECT: a 200
  // opens the stream for it [RFC 8441 5]; the HTTP/1.1 handshake's answer
  // (to the proxy's key) is not the client's.
  const bool switched = status == 101 && h->tunnel;
  if (switched) status = 200;
  // The fields point into the upstream's head and o.extra, which outlive
  // the submit (nghttp2 copies them).
  const size_t count = r != nullptr ? r->headers.size() : 0;
  size_t name_bytes = o.extra.size();
  for (size_t i = 0; i < count; ++i) name_bytes += r->headers[i].name.size();
  char code[8];
  h2::NvList& nva = response_nv;
  nva.reset(name_bytes, count + 8);
  nva.add_lower(":status", status_code(status, code));
  for (size_t i = 0; i < count; ++i) {
    if (o.skip != nullptr && (*o.skip)[i] != 0) continue;
    const http::HeaderField& f = r->headers[i];
    if (switched && http::iequals(f.name, "sec-websocket-accept")) continue;
    nva.add(f.name, f.value);
  }
  nva.add_lines(o.extra);
  size_t body_bytes = 0;
  for (const auto& b : body) body_bytes += b.size();
  const bool has_body = !h->is_head && (!(end && body_bytes == 0) || !h->trailers.empty());
  submit_response(*h, nva, body, end, has_body);
}

void Http2ServerConnection::send_body(Stream& s, Spans& body, bool, bool end) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  if (h->is_head) {
    written(*h);
    schedule();
    return;
  }
  h->out.set(body, end);
  h->out.write_outstanding = true;
  if (h->out.deferred) {
    h->out.deferred = false;
    nghttp2_session_resume_data(session_, h->id);
  }
  schedule();  // flushed once at the end of this event loop turn
}

void Http2ServerConnection::send_local_reply(Stream& s, int status, std::string_view content_type,
                                             std::string_view body, std::string_view extra_headers,
                                             bool) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  char code[8], length[24];
  const auto [end, ec] = std::to_chars(length, length + sizeof length, body.size());
  h2::NvList& nva = response_nv;
  nva.reset(extra_headers.size(), 8);
  nva.add_lower(":status", status_code(status, code));
  nva.add_lower("content-type", content_type);
  nva.add_lower("content-length", std::string_view(length, static_cast<size_t>(end - length)));
  nva.add_lines(extra_headers);
  const bool has_body = !h->is_head && !body.empty();
  h->local_body.assign(has_body ? body : std::string_view());
  Spans spans;
  if (has_body) http::add_span(spans, h->local_body);
  h->trailers.clear();
  submit_response(*h, nva, spans, true, has_body);
}

void Http2ServerConnection::start_tunnel(Stream& s) {
  if (H2Stream* h = of(s)) h->tunnel = true;
}

void Http2ServerConnection::set_response_trailers(Stream& s, const Trailers& trailers) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  h->trailers.clear();
  for (const auto& [name, value] : trailers)
    if (!hop_by_hop(name)) h->trailers.emplace_back(name, value);
}

void Http2ServerConnection::finished(Stream& s) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  end_stream(*h);
  // The response is complete and the request is not: the rest is not
  // wanted [RFC 9113 8.1].
  // Submitted by flush once the response's frames are out: nghttp2 sends
  // RST_STREAM ahead of queued HEADERS, which the reset would then drop.
  if (!h->remote_end && !h->closed) pending_resets_.push_back(h->id);
  schedule();
}

void Http2ServerConnection::reset(Stream& s) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  end_stream(*h);
  if (!h->closed) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_INTERNAL_ERROR);
  }
  schedule();
}

// ---- writing ----

void Http2ServerConnection::flush() {
  if (writing_ || closed_ || flushing_ || broken_) return;
  flushing_ = true;
  for (;;) {
    while (out_.size() < kMaxOutput) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        broken_ = true;
        break;
      }
      if (n == 0) {
        if (pending_resets_.empty()) break;
        for (const int32_t id : pending_resets_) {
          const H2Stream* h = find(id);
          if (h != nullptr && !h->closed)
            nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
        }
        pending_resets_.clear();
        continue;
      }
      const size_t len = static_cast<size_t>(n);
      // A pooled block first; a larger batch grows it (allocated directly).
      if (out_.write_space() < len)
        out_.reserve(std::max({out_.size() + len, 2 * out_.capacity(), kOutputBlock}));
      std::memcpy(out_.write_ptr(), data, len);
      if (!settings_advertised_) advertise_settings(out_.write_ptr(), len);
      out_.commit(len);
    }
    if (out_.empty() || broken_) break;
    out_spans_.clear();
    http::add_span(out_spans_, out_.readable());
    boost::system::error_code ec;
    if (transport_.write_now(out_spans_, ec)) {
      written_out();
      continue;
    }
    if (ec) {
      broken_ = true;
      break;
    }
    writing_ = true;
    transport_.async_write(out_spans_,
                           [self = core::Ref<Http2ServerConnection>(this)](
                               const boost::system::error_code& ec) { self->on_written(ec); });
    break;
  }
  flushing_ = false;
  if (broken_) {
    // Closed from the event loop: the caller may be a stream in the middle
    // of a call.
    boost::asio::post(worker_.io(),
                      [self = core::Ref<Http2ServerConnection>(this)] { self->close(); });
    return;
  }
  if (!events_.empty()) schedule();
  if (!writing_) maybe_close();
}

void Http2ServerConnection::written_out() {
  // The block goes back to the worker's pool between turns (a pop and a
  // push there): an idle connection holds no write buffer.
  out_.clear();
  out_.release();
}

void Http2ServerConnection::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  if (closed_) return;
  if (ec) {
    close();
    return;
  }
  written_out();
  last_activity_ = core::CoarseClock::now();
  flush();
  arm_timer();
}

}  // namespace sidecar::proxy
