// The nghttp2 side of the HTTP/2 server codec: the C callbacks, the open
// stream table with its per-worker free list, and the callbacks' handlers,
// which only record what arrived; Http2ServerConnection::dispatch acts.
#include <algorithm>

#include <nghttp2/nghttp2.h>

#include "proxy/http2_server.h"
#include "proxy/http2_server_stream.h"

namespace sidecar::proxy {

using Clock = Http2ServerConnection::Clock;

namespace {

// A request header block of more frames than this is a CONTINUATION flood.
constexpr uint32_t kMaxHeaderFrames = 64;
// PING or SETTINGS frames per second of one connection that are a flood
// (a client that reads its acks is never stopped by nghttp2's queue limit).
constexpr uint64_t kMaxControlFramesPerSecond = 1000;
// Rapid reset: once this many streams started, a connection whose streams
// were mostly reset by the client before their response ended is closed
// (Envoy's premature reset check).
constexpr uint64_t kMinStreamsForResetCheck = 100;
// Refused streams whose RST_STREAM is not written yet (a peer that does
// not read): more is a flood (nghttp2's own limit for queued PING and
// SETTINGS acknowledgements is the same).
constexpr uint64_t kMaxUnsentRefusals = 1000;

// Stream objects of this worker's connections not in use: a stream's
// strings and vectors keep their capacity, so a request usually allocates
// nothing here. Each worker thread has its own list.
constexpr size_t kMaxFreeStreams = 128;
thread_local std::vector<std::unique_ptr<Http2ServerConnection::H2Stream>> free_streams;

Http2ServerConnection* self_of(void* user) { return static_cast<Http2ServerConnection*>(user); }

int cb_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
  return self_of(u)->on_begin_headers(f->hd.stream_id, f->headers.cat == NGHTTP2_HCAT_REQUEST);
}
int cb_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* u) {
  return self_of(u)->on_begin_frame(hd->type, hd->flags, hd->stream_id, hd->length);
}
int cb_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void* u) {
  return self_of(u)->on_invalid_frame();
}

}  // namespace

namespace h2server {

ssize_t cb_read(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                nghttp2_data_source*, void* u) {
  return self_of(u)->read_response(id, buf, length, flags);
}

nghttp2_session_callbacks* callbacks() {
  // Built once per thread, never freed: the same for every connection.
  static thread_local nghttp2_session_callbacks* cbs = [] {
    nghttp2_session_callbacks* c = nullptr;
    nghttp2_session_callbacks_new(&c);
    h2::set_common_callbacks<Http2ServerConnection>(c);
    nghttp2_session_callbacks_set_on_begin_headers_callback(c, cb_begin_headers);
    nghttp2_session_callbacks_set_on_begin_frame_callback(c, cb_begin_frame);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(c, cb_invalid_frame);
    return c;
  }();
  return cbs;
}

}  // namespace h2server

namespace {
auto lower_bound_id(std::vector<std::unique_ptr<Http2ServerConnection::H2Stream>>& v, int32_t id) {
  return std::lower_bound(v.begin(), v.end(), id,
                          [](const auto& h, int32_t want) { return h->id < want; });
}
}  // namespace

Http2ServerConnection::H2Stream* Http2ServerConnection::find(int32_t id) {
  // Most lookups are for the newest stream (its headers, its data).
  if (!streams_.empty() && streams_.back()->id == id) return streams_.back().get();
  auto it = lower_bound_id(streams_, id);
  return it == streams_.end() || (*it)->id != id ? nullptr : it->get();
}

Http2ServerConnection::H2Stream* Http2ServerConnection::of(const Stream& s) {
  for (const auto& [stream, h] : by_stream_)
    if (stream == &s) return h;
  return nullptr;
}

void Http2ServerConnection::erase_stream(int32_t id) {
  auto it = lower_bound_id(streams_, id);
  if (it == streams_.end() || (*it)->id != id) return;
  std::unique_ptr<H2Stream> h = std::move(*it);
  streams_.erase(it);
  if (free_streams.size() < kMaxFreeStreams) {
    h->recycle();
    free_streams.push_back(std::move(h));
  }
}

void Http2ServerConnection::unlink_stream(const Stream* s) {
  for (size_t i = 0; i < by_stream_.size(); ++i) {
    if (by_stream_[i].first == s) {
      by_stream_[i] = by_stream_.back();
      by_stream_.pop_back();
      return;
    }
  }
}

// ---- nghttp2 callbacks: they only record; dispatch acts ----

int Http2ServerConnection::on_begin_frame(uint8_t type, uint8_t flags, int32_t id, size_t length) {
  switch (type) {
    case NGHTTP2_HEADERS:
      header_block_stream_ = (flags & NGHTTP2_FLAG_END_HEADERS) ? 0 : id;
      header_block_bytes_ = length;
      header_block_frames_ = 1;
      break;
    case NGHTTP2_CONTINUATION:
      header_block_bytes_ += length;
      ++header_block_frames_;
      if (header_block_frames_ > kMaxHeaderFrames ||
          header_block_bytes_ > 4 * size_t{listener_->config->http2.max_header_list_size}) {
        protect(Http2Protection::kContinuationFlood, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      if (flags & NGHTTP2_FLAG_END_HEADERS) header_block_stream_ = 0;
      break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS: {
      if (flags & NGHTTP2_FLAG_ACK) break;
      uint64_t& n = type == NGHTTP2_PING ? pings_ : settings_;
      const auto now = Clock::now();
      if (now - control_window_start_ > std::chrono::seconds(1)) {
        control_window_start_ = now;
        control_in_window_ = 0;
      }
      ++n;
      if (++control_in_window_ > kMaxControlFramesPerSecond) {
        protect(
            type == NGHTTP2_PING ? Http2Protection::kPingFlood : Http2Protection::kSettingsFlood,
            NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    }
    default:
      break;
  }
  return 0;
}

int Http2ServerConnection::on_begin_headers(int32_t id, bool request) {
  if (H2Stream* h = find(id)) {
    h->in_trailers = true;  // request trailers
    return 0;
  }
  if (!request) return 0;  // trailers of a stream refused (no state of ours)
  // RFC 9113 5.1.2: open and half-closed streams count; ours close when
  // nghttp2 closes them (on_stream_close).
  if (open_streams_ >= listener_->config->http2.max_concurrent_streams) return refuse_stream(id);
  ++open_streams_;
  ++streams_accepted_;
  std::unique_ptr<H2Stream> h;
  if (free_streams.empty()) {
    h = std::make_unique<H2Stream>();
  } else {
    h = std::move(free_streams.back());
    free_streams.pop_back();
  }
  h->id = id;
  h->first_byte = Clock::now();
  // nghttp2 accepts only ever higher ids for new streams: still sorted.
  streams_.push_back(std::move(h));
  return 0;
}

int Http2ServerConnection::on_header(int32_t id, std::string_view name, std::string_view value) {
  H2Stream* h = find(id);
  if (h == nullptr) return 0;
  if (h->in_trailers) {
    if (!name.empty() && name[0] != ':' && h->request_trailers.size() < 100)
      h->request_trailers.emplace_back(std::string(name), std::string(value));
    return 0;
  }
  // RFC 9113 6.5.2: name + value + 32 per field.
  h->header_bytes += name.size() + value.size() + 32;
  if (h->header_bytes > listener_->config->http2.max_header_list_size) h->too_large = true;
  if (h->too_large) return 0;
  if (!name.empty() && name[0] == ':') {
    if (name == ":method") {
      h->method.assign(value);
    } else if (name == ":path") {
      h->path.assign(value);
    } else if (name == ":authority") {
      h->authority.assign(value);
    } else if (name == ":scheme") {
      h->scheme.assign(value);
    } else if (name == ":protocol") {
      h->protocol.assign(value);  // nghttp2 takes it only with allow_connect
    }
    return 0;  // nghttp2 rejected anything else
  }
  if (name == "cookie") {
    if (!h->cookie.empty()) h->cookie += "; ";
    h->cookie.append(value);
    return 0;
  }
  if (h->field_count < h->fields.size()) {
    auto& [n, v] = h->fields[h->field_count];
    n.assign(name);
    v.assign(value);
  } else {
    h->fields.emplace_back(std::string(name), std::string(value));
  }
  ++h->field_count;
  return 0;
}

int Http2ServerConnection::on_frame_recv(uint8_t type, uint8_t flags, int32_t id) {
  H2Stream* h = id != 0 ? find(id) : nullptr;
  switch (type) {
    case NGHTTP2_HEADERS:
      if (h == nullptr) break;
      if (!h->in_trailers && !h->ev_start && !h->started) {
        h->ev_start = true;
        events_.push_back(id);
      }
      [[fallthrough]];
    case NGHTTP2_DATA:
      if (h != nullptr && (flags & NGHTTP2_FLAG_END_STREAM)) {
        h->remote_end = true;
        if (h->awaiting_body) {
          h->awaiting_body = false;
          h->ev_body = true;
          events_.push_back(id);
        }
      }
      break;
    case NGHTTP2_SETTINGS:
      if (flags & NGHTTP2_FLAG_ACK) settings_acked_ = true;  // we send one SETTINGS only
      break;
    case NGHTTP2_RST_STREAM:
      if (h != nullptr && !h->finished) {
        ++premature_resets_;
        const uint64_t streams = std::max<uint64_t>(streams_started_, streams_.size());
        if (streams >= kMinStreamsForResetCheck && premature_resets_ * 2 >= streams) {
          protect(Http2Protection::kRapidReset, NGHTTP2_ENHANCE_YOUR_CALM);
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
      }
      break;
    default:
      break;
  }
  return 0;
}

int Http2ServerConnection::on_data(int32_t id, const uint8_t* data, size_t len) {
  H2Stream* h = find(id);
  if (h == nullptr || h->finished || h->too_large) {
    nghttp2_session_consume(session_, id, len);  // nobody will take it
    return 0;
  }
  // Reserved once to the stream window (which bounds what is buffered), so
  // appending never moves bytes already offered to the stream.
  const size_t window = listener_->config->http2.initial_stream_window_size;
  if (h->body.capacity() < window) h->body.reserve(std::max(window, h->body.size() + len));
  h->body.append(reinterpret_cast<const char*>(data), len);
  if (h->awaiting_body) {
    h->awaiting_body = false;
    h->ev_body = true;
    events_.push_back(id);
  }
  return 0;
}

int Http2ServerConnection::refuse_stream(int32_t id) {
  ++streams_refused_;
  ++refusals_unsent_;
  info_.listener_stats->http2_protections[static_cast<size_t>(Http2Protection::kRefusedStream)]
      .add();
  // A client that keeps opening streams over the limit it was told costs a
  // header block decode and a frame each: bounded as rapid reset is (once
  // 100 were refused, more refused than accepted closes the connection),
  // and by the refusals queued for a peer that does not read them.
  // Before the peer acknowledged our SETTINGS it may not know the limit
  // (its initial value is unlimited [RFC 9113 6.5.2]): up to 1,000 of those
  // refusals (a first burst) are not held against it.
  if (!settings_acked_ && refusals_excused_ < kMaxUnsentRefusals) ++refusals_excused_;
  const uint64_t counted = streams_refused_ - refusals_excused_;
  if ((counted >= kMinStreamsForResetCheck && counted > streams_accepted_) ||
      refusals_unsent_ > kMaxUnsentRefusals) {
    protect(Http2Protection::kRefusedStreamFlood, NGHTTP2_ENHANCE_YOUR_CALM);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  // Queued now, written with this turn's frames; the stream is closed
  // once it is out (RFC 9113 8.7: not processed, safe to retry).
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
  return 0;
}

int Http2ServerConnection::on_stream_close(int32_t id, uint32_t code) {
  if (H2Stream* h = find(id); h == nullptr) {
    if (refusals_unsent_ > 0) --refusals_unsent_;  // a refused stream
  } else if (!h->closed) {
    --open_streams_;
    h->closed = true;
    h->close_code = code;
    h->ev_close = true;
    events_.push_back(id);
  }
  return 0;
}

int Http2ServerConnection::on_invalid_frame() {
  info_.listener_stats->http2_protections[static_cast<size_t>(Http2Protection::kInvalidStream)]
      .add();
  return 0;
}

long Http2ServerConnection::read_response(int32_t id, uint8_t* buf, size_t length,
                                          uint32_t* flags) {
  H2Stream* h = find(id);
  if (h == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  bool done = false;
  const long n = h->out.read_frame(session_, id, buf, length, flags, h->trailers, done);
  if (done) written(*h);
  return n;
}

}  // namespace sidecar::proxy
