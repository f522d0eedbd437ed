#include "proxy/http2_server.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>
#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "accesslog/entry.h"
#include "http/local_reply.h"
#include "http/spans.h"
#include "proxy/http2_common.h"
#include "proxy/upgrade.h"
#include "proxy/worker.h"

namespace sidecar::proxy {

using Clock = Http2ServerConnection::Clock;
using h2::add_lines;
using h2::Fields;
using h2::hop_by_hop;
using h2::lower;

struct Http2ServerConnection::H2Stream {
  int32_t id = 0;
  Clock::time_point first_byte;
  // The request as received.
  std::string method, scheme, authority, path;
  std::string protocol;  // ":protocol" of an extended CONNECT [RFC 8441 4]
  // The request's fields are fields[0, field_count); entries past it are
  // kept from earlier requests of a reused object for their capacity.
  Fields fields;
  size_t field_count = 0;
  std::string cookie;  // cookie fields joined with "; " [RFC 9113 8.2.3]
  size_t header_bytes = 0;
  bool too_large = false;
  bool in_trailers = false;
  std::string head;  // ... rewritten as an HTTP/1.1 head, parsed into req
  http::RequestHead req;
  std::unique_ptr<Stream> stream;  // while the exchange is on
  bool started = false;
  bool finished = false;  // the Stream is done (response complete or reset)
  bool remote_end = false;
  bool closed = false;  // nghttp2 closed the stream
  bool tunnel = false;  // an extended CONNECT the upstream switched (start_tunnel)
  bool is_head = false;
  // Pending events (run by dispatch).
  bool ev_start = false, ev_body = false, ev_written = false, ev_close = false;
  bool awaiting_body = false;
  uint32_t close_code = 0;
  // The request body received and not yet taken by the upstream; its
  // capacity is the stream window, so appending never moves offered bytes.
  std::string body;
  // The response body being sent: spans of the stream's buffers.
  h2::SpanSource out;
  std::string local_body;
  Fields trailers;          // of the response
  Fields request_trailers;  // received after the request body

  // Back to the state of a new stream, keeping small buffers' capacity.
  void recycle() {
    id = 0;
    method.clear(), scheme.clear(), authority.clear(), path.clear(), protocol.clear();
    field_count = 0;
    cookie.clear();
    header_bytes = 0;
    too_large = in_trailers = started = finished = remote_end = closed = tunnel = is_head = false;
    ev_start = ev_body = ev_written = ev_close = awaiting_body = false;
    close_code = 0;
    head.clear();
    req.clear();
    stream.reset();
    // A request body buffer is reserved to the stream window: not kept.
    if (body.capacity() > kKeepCapacity) std::string().swap(body);
    body.clear();
    out = h2::SpanSource{};
    if (local_body.capacity() > kKeepCapacity) std::string().swap(local_body);
    local_body.clear();
    trailers.clear();
    request_trailers.clear();
  }
  static constexpr size_t kKeepCapacity = 4096;
};

namespace {

using core::kNever;
constexpr size_t kReadSize = 16 * 1024;
constexpr size_t kMaxOutput = 64 * 1024;  // bytes gathered from nghttp2 per write
constexpr size_t kOutputBlock = core::BufferPool::kBlockSize;
// A request header block of more frames than this is a CONTINUATION flood.
constexpr uint32_t kMaxHeaderFrames = 64;
// PING or SETTINGS frames per second of one connection that are a flood
// (a client that reads its acks is never stopped by nghttp2's queue limit).
constexpr uint64_t kMaxControlFramesPerSecond = 1000;
// Rapid reset: once this many streams started, a connection whose streams
// were mostly reset by the client before their response ended is closed
// (Envoy's premature reset check).
constexpr uint64_t kMinStreamsForResetCheck = 100;

// Stream objects of this worker's connections not in use: a stream's
// strings and vectors keep their capacity, so a request usually allocates
// nothing here. Each worker thread has its own list.
constexpr size_t kMaxFreeStreams = 128;
thread_local std::vector<std::unique_ptr<Http2ServerConnection::H2Stream>> free_streams;

// The header list of the response being submitted (nghttp2 copies it).
thread_local h2::NvList response_nv;

// ":status" as three digits in `buf`.
std::string_view status_code(int status, char (&buf)[8]) {
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, status);
  return std::string_view(buf, static_cast<size_t>(end - buf));
}

Http2ServerConnection* self_of(void* user) { return static_cast<Http2ServerConnection*>(user); }

int cb_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
  return self_of(u)->on_begin_headers(f->hd.stream_id);
}
int cb_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* u) {
  return self_of(u)->on_header(f->hd.stream_id,
                               std::string_view(reinterpret_cast<const char*>(name), namelen),
                               std::string_view(reinterpret_cast<const char*>(value), valuelen));
}
int cb_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* u) {
  return self_of(u)->on_begin_frame(hd->type, hd->flags, hd->stream_id, hd->length);
}
int cb_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* u) {
  return self_of(u)->on_frame_recv(f->hd.type, f->hd.flags, f->hd.stream_id);
}
int cb_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* u) {
  return self_of(u)->on_data(id, data, len);
}
int cb_stream_close(nghttp2_session*, int32_t id, uint32_t code, void* u) {
  return self_of(u)->on_stream_close(id, code);
}
int cb_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void* u) {
  return self_of(u)->on_invalid_frame();
}
ssize_t cb_read(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                nghttp2_data_source*, void* u) {
  return self_of(u)->read_response(id, buf, length, flags);
}

nghttp2_session_callbacks* callbacks() {
  // Built once per thread, never freed: the same for every connection.
  static thread_local nghttp2_session_callbacks* cbs = [] {
    nghttp2_session_callbacks* c = nullptr;
    nghttp2_session_callbacks_new(&c);
    nghttp2_session_callbacks_set_on_begin_headers_callback(c, cb_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(c, cb_header);
    nghttp2_session_callbacks_set_on_begin_frame_callback(c, cb_begin_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, cb_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, cb_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, cb_stream_close);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(c, cb_invalid_frame);
    return c;
  }();
  return cbs;
}

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
  nghttp2_session_server_new2(&session_, callbacks(), this, opt);
  nghttp2_option_del(opt);
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h.max_concurrent_streams},
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
  last_activity_ = Clock::now();
  if (!received.empty() && !receive(received)) return;
  dispatch();
  flush();
  arm_timer();
  read();
}

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

// ---- reading ----

void Http2ServerConnection::read() {
  if (reading_ || closed_) return;
  reading_ = true;
  // nghttp2 copies what it keeps, so the read buffer is needed only while a
  // read is processed: it goes back to the worker's pool between reads and
  // an idle connection holds none.
  in_.release();
  transport_.async_wait_readable(
      [self = core::Ref<Http2ServerConnection>(this)](const boost::system::error_code& ec) {
        self->on_readable(ec);
      });
}

void Http2ServerConnection::on_readable(const boost::system::error_code& ec) {
  if (closed_ || ec) {
    on_read(ec ? ec : boost::asio::error::operation_aborted, 0);
    return;
  }
  in_.reserve(kReadSize);
  size_t n = 0;
  boost::system::error_code rec;
  if (!transport_.read_now(boost::asio::buffer(in_.write_ptr(), in_.write_space()), n, rec)) {
    reading_ = false;
    read();  // woken for nothing (or TLS bytes that are not a record yet)
    return;
  }
  on_read(rec, n);
}

void Http2ServerConnection::on_read(const boost::system::error_code& ec, size_t bytes) {
  reading_ = false;
  if (closed_) return;
  if (ec || bytes == 0) {
    close();
    return;
  }
  last_activity_ = Clock::now();
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
  for (ssize_t n; (n = nghttp2_session_mem_send(session_, &data)) > 0;)
    last.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  if (!last.empty()) {
    Spans spans;
    http::add_span(spans, last);
    boost::system::error_code ignored;
    transport_.write_now(spans, ignored);
  }
  close();
  return false;
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

int Http2ServerConnection::on_begin_headers(int32_t id) {
  if (H2Stream* h = find(id)) {
    h->in_trailers = true;  // request trailers
    return 0;
  }
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

int Http2ServerConnection::on_stream_close(int32_t id, uint32_t code) {
  if (H2Stream* h = find(id)) {
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
  bool written = false;
  const long n = h->out.read_frame(session_, id, buf, length, flags, h->trailers, written);
  if (written) {
    h->ev_written = true;
    events_.push_back(id);
  }
  return n;
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

void Http2ServerConnection::submit_response(H2Stream& h, h2::NvList& nva, bool has_body) {
  nghttp2_data_provider provider{};
  provider.source.ptr = &h;
  provider.read_callback = cb_read;
  nghttp2_submit_response(session_, h.id, nva.data(), nva.size(), has_body ? &provider : nullptr);
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
  h->ev_written = true;
  events_.push_back(h->id);
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
  h->out.set(has_body ? body : Spans(), end);
  h->out.deferred = false;
  if (has_body) {
    h->out.write_outstanding = true;
  } else {
    h->ev_written = true;
    events_.push_back(h->id);
  }
  submit_response(*h, nva, has_body);
  schedule();  // flushed once at the end of this event loop turn
}

void Http2ServerConnection::send_body(Stream& s, Spans& body, bool, bool end) {
  H2Stream* h = of(s);
  if (h == nullptr) return;
  if (h->is_head) {
    h->ev_written = true;
    events_.push_back(h->id);
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
  h->out.set(spans, true);
  h->out.deferred = false;
  if (has_body) {
    h->out.write_outstanding = true;
  } else {
    h->ev_written = true;
    events_.push_back(h->id);
  }
  submit_response(*h, nva, has_body);
  schedule();  // flushed once at the end of this event loop turn
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
  last_activity_ = Clock::now();
  flush();
  arm_timer();
}

void Http2ServerConnection::protect(Http2Protection why, uint32_t goaway_code) {
  SPDLOG_DEBUG("{}: HTTP/2 protection: {}", info_.peer_ip(),
               stats::kHttp2Protections[static_cast<size_t>(why)]);
  info_.listener_stats->http2_protections[static_cast<size_t>(why)].add();
  nghttp2_session_terminate_session(session_, goaway_code);
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
