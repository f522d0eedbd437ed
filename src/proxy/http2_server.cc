#include "proxy/http2_server.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>
#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "accesslog/entry.h"
#include "core/coarse_clock.h"
#include "http/local_reply.h"
#include "http/spans.h"
#include "proxy/http2_common.h"
#include "proxy/http2_server_stream.h"
#include "proxy/upgrade.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

using Clock = Http2ServerConnection::Clock;

namespace {

using core::kNever;
constexpr size_t kReadSize = 16 * 1024;
// SETTINGS_MAX_CONCURRENT_STREAMS given to nghttp2: its "unlimited".
constexpr uint32_t kNoStreamLimit = 0xffffffffu;

}  // namespace

Http2ServerConnection::Http2ServerConnection(Worker& worker,
                                             std::shared_ptr<const Snapshot> snapshot,
                                             const ListenerRuntime& listener,
                                             net::Transport transport, const DownstreamInfo& info)
    : worker_(worker),
      snapshot_(std::move(snapshot)),
      listener_(&listener),
      direction_(listener.config->direction),
      transport_(std::move(transport)),
      info_(info) {
  const config::Http2Settings& h = listener.config->http2;
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Windows open only when the upstream took the bytes (end-to-end flow control).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  // nghttp2 keeps closed streams for RFC 7540 priorities, as many as its
  // stream limit, which is unbounded below: none kept (RFC 9113 dropped
  // that priority scheme).
  nghttp2_option_set_no_closed_streams(opt, 1);
  nghttp2_session_server_new3(&session_, h2server::callbacks(), this, opt, h2::allocator());
  nghttp2_option_del(opt);
  // max_concurrent_streams: nghttp2 gets no limit (a stream over the one
  // the peer acknowledged is a connection error in nghttp2 1.52); the
  // configured value goes on the wire (advertise_settings) and
  // on_begin_headers refuses the streams over it [RFC 9113 5.1.2].
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kNoStreamLimit},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h.initial_stream_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h.max_header_list_size},
      {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv,
                          std::size(iv) - (h.allow_connect ? 0 : 1));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(h.initial_connection_window_size));
  info_.listener_stats->http2_connections.add();
  worker_.add_connection(this);
}

Http2ServerConnection::~Http2ServerConnection() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void Http2ServerConnection::start(std::string_view received) {
  last_activity_ = core::CoarseClock::now();
  if (!received.empty() && !receive(received)) return;
  dispatch();
  flush();
  arm_timer();
  read();
}

// ---- reading ----

void Http2ServerConnection::read() {
  if (reading_ || closed_) return;
  reading_ = true;
  // nghttp2 copies what it keeps, so the read buffer is needed only while a
  // read is processed: it goes back to the worker's pool between reads and
  // an idle connection holds none.
  in_.release();
  transport_.async_read_into(
      in_, kReadSize,
      [self = core::Ref<Http2ServerConnection>(this)](const boost::system::error_code& ec,
                                                      size_t n) { self->on_read(ec, n); });
}

void Http2ServerConnection::on_read(const boost::system::error_code& ec, size_t bytes) {
  reading_ = false;
  if (closed_) return;
  if (ec || bytes == 0) {
    close();
    return;
  }
  last_activity_ = core::CoarseClock::now();
  in_.commit(bytes);
  const std::string_view received = in_.readable();
  in_.clear();
  if (!receive(received)) return;
  dispatch();
  flush();
  arm_timer();
  read();
}

bool Http2ServerConnection::receive(std::string_view bytes) {
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (rv >= 0) return true;
  if (rv == NGHTTP2_ERR_FLOODED) {
    protect(pings_ >= settings_ && pings_ > 0 ? Http2Protection::kPingFlood
            : settings_ > 0                   ? Http2Protection::kSettingsFlood
                                              : Http2Protection::kOutboundFlood,
            NGHTTP2_ENHANCE_YOUR_CALM);
  } else if (rv != NGHTTP2_ERR_CALLBACK_FAILURE) {
    // A connection error (bad preface, frame errors): nghttp2 queued its GOAWAY.
    SPDLOG_DEBUG("{}: HTTP/2 connection error: {}", info_.peer_ip(),
                 nghttp2_strerror(static_cast<int>(rv)));
    if (header_block_stream_ != 0 && header_block_frames_ > 1) {
      info_.listener_stats
          ->http2_protections[static_cast<size_t>(Http2Protection::kContinuationFlood)]
          .add();
    }
  }
  // The callback that failed said why (protect); write the GOAWAY if the
  // peer still reads, then close.
  const uint8_t* data = nullptr;
  std::string last;
  for (ssize_t n; (n = nghttp2_session_mem_send(session_, &data)) > 0;) {
    last.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    if (!settings_advertised_) advertise_settings(last.data(), last.size());
  }
  if (!last.empty()) {
    Spans spans;
    http::add_span(spans, last);
    boost::system::error_code ignored;
    transport_.write_now(spans, ignored);
  }
  close();
  return false;
}

// ---- stream events ----

void Http2ServerConnection::dispatch() {
  if (in_dispatch_) return;
  in_dispatch_ = true;
  for (size_t i = 0; i < events_.size(); ++i) {
    const int32_t id = events_[i];
    H2Stream* h = find(id);
    if (h == nullptr) continue;
    if (h->ev_start) {
      h->ev_start = false;
      start_stream(*h);
    }
    if (h->ev_body) {
      h->ev_body = false;
      if (h->stream) h->stream->on_request_body();
    }
    if (h->ev_written) {
      h->ev_written = false;
      if (h->stream) h->stream->on_downstream_written({});
    }
    if (h->ev_close) {
      h->ev_close = false;
      if (h->stream) {
        h->stream->on_downstream_reset(boost::asio::error::connection_reset);
        end_stream(*h);
      }
      if (!h->body.empty()) {
        nghttp2_session_consume_connection(session_, h->body.size());
      }
      erase_stream(id);
    }
  }
  events_.clear();
  in_dispatch_ = false;
  if (close_requested_) close();
}

void Http2ServerConnection::schedule() {
  if (dispatch_posted_ || in_dispatch_ || closed_) return;
  dispatch_posted_ = true;
  boost::asio::post(worker_.io(), [self = core::Ref<Http2ServerConnection>(this)] {
    self->dispatch_posted_ = false;
    if (self->closed_) return;
    self->dispatch();
    self->flush();
    // Writing usually raised "written" events (the bodies were taken):
    // run them now, so a stream that finishes frees its slot this turn.
    if (!self->events_.empty() && !self->closed_) {
      self->dispatch();
      self->flush();
    }
    self->arm_timer();
  });
}

void Http2ServerConnection::start_stream(H2Stream& h) {
  if (h.started || h.closed || closed_) return;
  h.started = true;
  ++streams_started_;
  h.is_head = h.method == "HEAD";
  std::unique_ptr<Stream> s = worker_.acquire_stream();
  Stream* raw = s.get();
  h.stream = std::move(s);
  by_stream_.emplace_back(raw, &h);
  if (h.too_large) {
    info_.listener_stats
        ->http2_protections[static_cast<size_t>(Http2Protection::kHeaderListTooLarge)]
        .add();
    const http::ParseError e = http::ParseError::kHeadTooLarge;
    raw->start_rejected(*this, info_, snapshot_, *listener_, h.first_byte, http::Method::kGet,
                        static_cast<size_t>(e), 431,
                        fmt::format("{}: {}\n", http::reason_phrase(431), http::to_string(e)),
                        accesslog::kDownstreamProtocolError);
    return;
  }
  // The request as an HTTP/1.1 head: ":authority" becomes Host (and wins
  // over a Host field [RFC 9113 8.3.1]).
  std::string& head = h.head;
  head.clear();
  // An extended CONNECT [RFC 8441 4, 5] becomes the HTTP/1.1 upgrade it
  // stands for: GET with Upgrade, and (for a WebSocket) a key of the
  // proxy's own, as the HTTP/2 client sends none. Its DATA frames are the
  // tunnel's bytes, not a body, once the upstream switched.
  const bool extended_connect = !h.protocol.empty() && h.method == "CONNECT";
  const bool websocket = extended_connect && http::iequals(h.protocol, "websocket");
  head.append(extended_connect ? std::string_view("GET") : std::string_view(h.method))
      .append(" ")
      .append(h.path.empty() ? "*" : h.path)
      .append(" HTTP/1.1\r\n");
  bool has_length = false, has_key = false;
  // Trailers that came with the whole request reach an HTTP/1.1 upstream
  // only in a chunked body [RFC 9112 7.1.2], which has no Content-Length.
  // (Trailers after a Content-Length body still streaming are dropped on
  // that hop, as Envoy does.)
  const bool chunked_for_trailers = h.remote_end && !h.request_trailers.empty();
  if (!h.authority.empty()) head.append("host: ").append(h.authority).append("\r\n");
  for (size_t i = 0; i < h.field_count; ++i) {
    const auto& [name, value] = h.fields[i];
    if (name == "host" && !h.authority.empty()) continue;
    if (name == "content-length") {
      if (chunked_for_trailers) continue;
      has_length = true;
    }
    if (name == "sec-websocket-key") has_key = true;
    head.append(name).append(": ").append(value).append("\r\n");
  }
  if (!h.cookie.empty()) head.append("cookie: ").append(h.cookie).append("\r\n");
  if (extended_connect) {
    head.append("upgrade: ").append(h.protocol).append("\r\nconnection: upgrade\r\n");
    if (websocket && !has_key) {
      head.append("sec-websocket-key: ").append(websocket_key(worker_.random())).append("\r\n");
    }
  } else if (!has_length && !(h.remote_end && h.body.empty() && h.request_trailers.empty())) {
    if (h.remote_end && !chunked_for_trailers) {
      head.append(fmt::format("content-length: {}\r\n", h.body.size()));
    } else {
      head.append("transfer-encoding: chunked\r\n");  // streamed, as DATA comes
    }
  }
  head.append("\r\n");
  http::RequestParser parser(listener_->limits);
  const http::HeadResult r = parser.feed(head, h.req);
  if (r.status != http::HeadResult::kDone) {
    const http::ParseError e =
        r.status == http::HeadResult::kError ? r.error : http::ParseError::kHeadTooLarge;
    const int status = http::status_for(e);
    raw->start_rejected(*this, info_, snapshot_, *listener_, h.first_byte,
                        h.is_head ? http::Method::kHead : http::Method::kGet,
                        static_cast<size_t>(e), status,
                        fmt::format("{}: {}\n", http::reason_phrase(status), http::to_string(e)),
                        accesslog::kDownstreamProtocolError);
    return;
  }
  raw->start(*this, info_, snapshot_, *listener_, h.req, h.first_byte);
}

void Http2ServerConnection::end_stream(H2Stream& h) {
  if (!h.stream) return;
  unlink_stream(h.stream.get());
  h.finished = true;
  h.awaiting_body = false;
  h.out.write_outstanding = false;
  worker_.release_stream(std::move(h.stream));
}

void Http2ServerConnection::protect(Http2Protection why, uint32_t goaway_code) {
  SPDLOG_DEBUG("{}: HTTP/2 protection: {}", info_.peer_ip(),
               stats::kHttp2Protections[static_cast<size_t>(why)]);
  info_.listener_stats->http2_protections[static_cast<size_t>(why)].add();
  nghttp2_session_terminate_session(session_, goaway_code);
}

void Http2ServerConnection::advertise_settings(char* frames, size_t len) {
  settings_advertised_ = true;
  // The first frame a server session writes is the SETTINGS frame
  // submitted in the constructor [RFC 9113 3.4]: a 9-byte header (length
  // 24 bits, type, flags, stream id), then 6-byte entries (id 16 bits,
  // value 32 bits) [RFC 9113 6.5.1], all big-endian.
  auto* p = reinterpret_cast<uint8_t*>(frames);
  const size_t length = len < 9 ? 0 : size_t{p[0]} << 16 | size_t{p[1]} << 8 | p[2];
  if (len < 9 || p[3] != NGHTTP2_SETTINGS || (p[4] & NGHTTP2_FLAG_ACK) != 0 || length % 6 != 0 ||
      9 + length > len) {
    SPDLOG_ERROR(
        "HTTP/2: the first frame out is not our SETTINGS: max_concurrent_streams "
        "not advertised");
    return;
  }
  const uint32_t limit = listener_->config->http2.max_concurrent_streams;
  for (uint8_t* e = p + 9; e < p + 9 + length; e += 6) {
    if ((e[0] << 8 | e[1]) != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) continue;
    e[2] = static_cast<uint8_t>(limit >> 24);
    e[3] = static_cast<uint8_t>(limit >> 16);
    e[4] = static_cast<uint8_t>(limit >> 8);
    e[5] = static_cast<uint8_t>(limit);
  }
}

void Http2ServerConnection::maybe_close() {
  if (closed_ || in_dispatch_) return;
  if (!by_stream_.empty()) return;
  const bool done = !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
  if (done || (draining_ && out_.empty())) close();
}

void Http2ServerConnection::drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  flush();
}

void Http2ServerConnection::close() {
  if (closed_) return;
  if (in_dispatch_) {
    close_requested_ = true;
    return;
  }
  closed_ = true;
  const core::Ref<Http2ServerConnection> keep(this);  // cancel_timer() may drop the last other one
  for (auto& h : streams_) {
    if (h->stream) {
      h->stream->on_downstream_reset(boost::asio::error::operation_aborted);
      end_stream(*h);
    }
  }
  while (!streams_.empty()) erase_stream(streams_.back()->id);
  by_stream_.clear();
  info_.listener_stats->connections_active.sub();
  cancel_timer();
  transport_.close();
  worker_.remove_connection(this);
}

// ---- timeouts ----

Clock::time_point Http2ServerConnection::deadline() const {
  if (closed_) return kNever;
  Clock::time_point d = kNever;
  for (const auto& [s, h] : by_stream_) d = std::min(d, s->deadline());
  if (by_stream_.empty()) {
    const auto idle = listener_->config->idle_timeout;
    if (idle.count() > 0) d = std::min(d, last_activity_ + idle);
  }
  return d;
}

void Http2ServerConnection::arm_timer() {
  core::arm_no_later(worker_.timers(), *this, *this, deadline());
}

void Http2ServerConnection::cancel_timer() { core::disarm(worker_.timers(), *this, *this); }

void Http2ServerConnection::on_expired() {
  const core::Ref<Http2ServerConnection> self(this, false);  // the armed entry's reference
  if (closed_) return;
  const Clock::time_point now = Clock::now();
  if (by_stream_.empty()) {
    const auto idle = listener_->config->idle_timeout;
    if (idle.count() > 0 && now >= last_activity_ + idle) {
      drain();  // GOAWAY, then closed once written
      maybe_close();
      if (!closed_) close();
      return;
    }
  }
  std::vector<Stream*> due;
  for (const auto& [s, h] : by_stream_)
    if (s->deadline() <= now) due.push_back(const_cast<Stream*>(s));
  for (Stream* s : due)
    if (of(*s) != nullptr) s->on_timeout(now);
  flush();
  arm_timer();
}

}  // namespace sidecar::proxy
