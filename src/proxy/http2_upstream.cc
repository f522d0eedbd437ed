#include "proxy/http2_upstream.h"

#include <algorithm>

#include <fmt/format.h>
#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "http/local_reply.h"
#include "http/spans.h"
#include "proxy/worker.h"
#include "stats/stats.h"

namespace sidecar::proxy {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kMaxStreamsPerConnection = 100;
constexpr uint32_t kStreamWindow = 256 * 1024;       // bytes (Envoy's default)
constexpr uint32_t kConnectionWindow = 1024 * 1024;  // bytes
constexpr size_t kMaxOutput = 64 * 1024;             // bytes gathered per write

Http2ClientConnection* self_of(void* u) { return static_cast<Http2ClientConnection*>(u); }

int cb_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* u) {
  return self_of(u)->on_begin_headers(f->hd.stream_id);
}
ssize_t cb_read(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                nghttp2_data_source*, void* u) {
  return self_of(u)->read_request(id, buf, length, flags);
}

nghttp2_session_callbacks* callbacks() {
  static thread_local nghttp2_session_callbacks* cbs = [] {
    nghttp2_session_callbacks* c = nullptr;
    nghttp2_session_callbacks_new(&c);
    h2::set_common_callbacks<Http2ClientConnection>(c);
    nghttp2_session_callbacks_set_on_begin_headers_callback(c, cb_begin_headers);
    return c;
  }();
  return cbs;
}

}  // namespace

// ---- the stream ----

Http2UpstreamStream::Http2UpstreamStream(Worker& worker, upstream::ClusterRuntime& cluster,
                                         UpstreamEvents& events, bool fresh,
                                         upstream::Endpoint* endpoint)
    : worker_(worker), cluster_(cluster), events_(events), fresh_(fresh), endpoint_(endpoint) {}

Http2UpstreamStream::~Http2UpstreamStream() {
  if (conn_) release(false);
}

void Http2UpstreamStream::start() {
  if (endpoint_ == nullptr) {
    upstream::ClusterRuntime::Refusal why;
    endpoint_ = cluster_.choose(upstream::LbContext{}, why);
  }
  if (endpoint_ != nullptr)
    conn_ = worker_.http2_pool().acquire(worker_, cluster_, *endpoint_, fresh_, reused_);
  if (!conn_) {
    // No endpoint, or a circuit breaker refused: 503 UO at once.
    events_.on_upstream_ready(make_error_code(upstream::AttemptError::kOverflow));
    return;
  }
  conn_->attach(*this);
}

std::string_view Http2UpstreamStream::host() const {
  return conn_ ? std::string_view(conn_->transport().endpoint().name()) : std::string_view();
}

std::string_view Http2UpstreamStream::failure() const {
  return conn_ ? std::string_view(conn_->transport().tls_failure()) : std::string_view();
}

stats::EndpointStats* Http2UpstreamStream::endpoint_stats() const {
  return conn_ ? conn_->transport().endpoint().stats : nullptr;
}

upstream::Endpoint* Http2UpstreamStream::endpoint() const {
  return conn_ ? &conn_->transport().endpoint() : nullptr;
}

void Http2UpstreamStream::send_request(const OutgoingRequest& req, Spans& body, bool, bool end) {
  size_t bytes = 0;
  for (const auto& b : body) bytes += b.size();
  const bool has_body = !(end && bytes == 0) || !request_trailers_.empty();
  out_.set(body, end);
  out_.write_outstanding = true;
  conn_->submit(*this, req, has_body);
}

void Http2UpstreamStream::send_body(Spans& body, bool, bool end) {
  out_.set(body, end);
  out_.write_outstanding = true;
  if (conn_) conn_->resume(*this);
}

void Http2UpstreamStream::set_request_trailers(const Trailers& trailers) {
  request_trailers_.clear();
  for (const auto& [name, value] : trailers)
    if (!h2::hop_by_hop(name)) request_trailers_.emplace_back(name, value);
}

BodyBatch Http2UpstreamStream::response_body(Spans& out, bool) {
  BodyBatch b;
  if (!body_.empty()) http::add_span(out, body_.data(), body_.size());
  b.consumed = body_.size();
  given_ = b.consumed;
  b.end = remote_end_;
  if (b.end && !trailers_.empty()) b.trailers = &trailers_;
  return b;
}

void Http2UpstreamStream::consume_response_body(size_t bytes) {
  if (interim_pending_ && bytes == 0) {
    interim_pending_ = false;
    if (head_done_ && conn_) {
      ev_headers_ = true;
      conn_->raise_event(*this);
    }
    return;
  }
  bytes = std::min(bytes, body_.size());
  if (bytes == 0) return;
  body_.erase(0, bytes);
  if (conn_) conn_->consume(*this, bytes);
}

void Http2UpstreamStream::await_response_body() {
  if (!body_.empty() || remote_end_) {
    ev_body_ = true;
    if (conn_) conn_->raise_event(*this);
    return;
  }
  awaiting_ = true;
}

void Http2UpstreamStream::release(bool) {
  if (!conn_) return;
  core::Ref<Http2ClientConnection> c = std::move(conn_);
  c->detach(*this, !closed_);
}

// ---- the connection ----

Http2ClientConnection::Http2ClientConnection(Worker& worker, upstream::ClusterRuntime& cluster,
                                             core::Ref<upstream::UpstreamConnection> transport)
    : worker_(worker), cluster_(&cluster), conn_(std::move(transport)) {
  conn_->set_owner(this);
  idle_since_ = Clock::now();
}

Http2ClientConnection::~Http2ClientConnection() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void Http2ClientConnection::start() {
  conn_->endpoint().stats->pending_requests.add();
  conn_->connect();
}

bool Http2ClientConnection::has_room() const {
  uint32_t limit = kMaxStreamsPerConnection;
  if (settled_) {
    limit = std::min(limit, nghttp2_session_get_remote_settings(
                                session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
  }
  return streams() < limit;
}

void Http2ClientConnection::admit(Http2UpstreamStream& s) {
  if (!s.admitted_) {
    s.admitted_ = true;
    ++admitted_;
  }
}

void Http2ClientConnection::unadmit(Http2UpstreamStream& s) {
  if (s.admitted_) {
    s.admitted_ = false;
    --admitted_;
  }
}

void Http2ClientConnection::attach(Http2UpstreamStream& s) {
  if (settled_) {
    admit(s);
    s.ev_ready_ = true;
    raise_event(s);
    return;
  }
  waiting_.push_back(&s);
}

void Http2ClientConnection::raise_event(Http2UpstreamStream& s) {
  events_.push_back(&s);
  schedule();
}

void Http2ClientConnection::detach(Http2UpstreamStream& s, bool reset) {
  unadmit(s);
  std::replace(events_.begin(), events_.end(), &s, static_cast<Http2UpstreamStream*>(nullptr));
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), &s), waiting_.end());
  if (s.id_ > 0) {
    streams_.erase(s.id_);
    if (session_ != nullptr && !closed_) {
      nghttp2_session_set_stream_user_data(session_, s.id_, nullptr);
      if (reset) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id_, NGHTTP2_CANCEL);
      // Whatever it did not take still counts against the connection window.
      if (!s.body_.empty()) nghttp2_session_consume_connection(session_, s.body_.size());
    }
  }
  if (streams() == 0) idle_since_ = Clock::now();
  flush();
}

void Http2ClientConnection::submit(Http2UpstreamStream& s, const OutgoingRequest& req,
                                   bool has_body) {
  unadmit(s);
  if (closed_ || session_ == nullptr) {
    s.ev_failed_ = true;
    s.failure_kind_ = UpstreamEvents::Failure::kClosed;
    raise_event(s);
    return;
  }
  h2::Fields& f = s.request_fields_;
  f.clear();
  std::string path;
  if (req.slash_first) path = "/";
  path.append(req.path);
  if (path.empty()) path = "/";
  f.emplace_back(":method", std::string(req.method));
  f.emplace_back(":scheme", cluster_->tls() != nullptr ? "https" : "http");
  f.emplace_back(":authority", std::string(req.authority));
  f.emplace_back(":path", std::move(path));
  bool te_trailers = false;
  if (const http::RequestHead* r = req.request) {
    for (size_t i = 0; i < r->headers.size(); ++i) {
      const http::HeaderField& h = r->headers[i];
      std::string name = h2::lower(h.name);
      // gRPC servers want "te: trailers", the one TE value HTTP/2 allows.
      if (name == "te") {
        te_trailers = te_trailers || h.value.find("trailers") != std::string_view::npos;
        continue;
      }
      if (req.skip != nullptr && (*req.skip)[i] != 0) continue;
      if (name == "host" || h2::hop_by_hop(name)) continue;
      f.emplace_back(std::move(name), std::string(h.value));
    }
  }
  h2::add_lines(req.extra, f);
  // ... or a filter asked for it (grpc_web, for a gRPC-Web client's call).
  if (req.extra.starts_with("te: trailers\r\n") ||
      req.extra.find("\nte: trailers\r\n") != std::string_view::npos) {
    te_trailers = true;
  }
  if (te_trailers) f.emplace_back("te", "trailers");
  const std::vector<nghttp2_nv> nva = h2::to_nv({}, {}, f);
  nghttp2_data_provider provider{};
  provider.read_callback = cb_read;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            has_body ? &provider : nullptr, &s);
  if (id < 0) {
    s.refused_ = true;
    s.ev_failed_ = true;
    s.failure_kind_ = UpstreamEvents::Failure::kReset;
    raise_event(s);
    return;
  }
  s.id_ = id;
  streams_[id] = &s;
  ++conn_->requests;
  if (!has_body) {
    s.out_.write_outstanding = false;
    s.ev_written_ = true;
    raise_event(s);
  }
  schedule();  // one write for the requests submitted this event loop turn
}

void Http2ClientConnection::resume(Http2UpstreamStream& s) {
  if (session_ == nullptr || s.id_ <= 0 || closed_) return;
  if (s.out_.deferred) {
    s.out_.deferred = false;
    nghttp2_session_resume_data(session_, s.id_);
  }
  schedule();
}

void Http2ClientConnection::consume(Http2UpstreamStream& s, size_t bytes) {
  if (session_ == nullptr || closed_ || s.id_ <= 0) return;
  nghttp2_session_consume(session_, s.id_, bytes);
  schedule();
}

void Http2ClientConnection::on_upstream_connected(const boost::system::error_code& ec) {
  conn_->endpoint().stats->pending_requests.sub();
  core::Ref<Http2ClientConnection> keep(this);
  if (ec) {
    conn_->endpoint().stats->connect_failures.add();
    connect_error_ = ec;
    for (Http2UpstreamStream* s : waiting_) {
      s->ev_ready_ = true;
      events_.push_back(s);
    }
    waiting_.clear();
    close();
    dispatch();
    return;
  }
  if (cluster_->tls() != nullptr) {
    const net::SecureLayer* tls = conn_->transport().secure();
    const bool h2 = tls != nullptr && tls->info().alpn == "h2";
    if (cluster_->config().protocol == config::UpstreamProtocol::kAuto) {
      conn_->endpoint().alpn =
          h2 ? upstream::Endpoint::Alpn::kH2 : upstream::Endpoint::Alpn::kHttp1;
      if (!h2) {
        // The endpoint chose HTTP/1.1: this connection (nothing was sent on
        // it yet) goes to the endpoint's HTTP/1.1 pool, and the streams
        // start their attempt again there (Stream::on_upstream_ready).
        SPDLOG_DEBUG("upstream {} of cluster {} chose '{}' by ALPN: HTTP/1.1",
                     conn_->endpoint().name(), cluster_->config().name,
                     tls != nullptr ? tls->info().alpn : std::string());
        connect_error_ = make_error_code(upstream::AttemptError::kAlpnMismatch);
        for (Http2UpstreamStream* s : waiting_) {
          s->ev_ready_ = true;
          events_.push_back(s);
        }
        waiting_.clear();
        closed_ = true;
        conn_->set_owner(nullptr);
        worker_.http2_pool().remove(*this);
        cluster_->release(conn_, true);
        dispatch();
        return;
      }
    }
    if (!h2) {
      SPDLOG_WARN("upstream {} of cluster {} did not negotiate h2 by ALPN",
                  conn_->endpoint().name(), cluster_->config().name);
      connect_error_ = boost::asio::error::no_protocol_option;
      for (Http2UpstreamStream* s : waiting_) {
        s->ev_ready_ = true;
        events_.push_back(s);
      }
      waiting_.clear();
      close();
      dispatch();
      return;
    }
  }
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new3(&session_, callbacks(), this, opt, h2::allocator());
  nghttp2_option_del(opt);
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  connected_ = true;
  // Streams wait for the upstream's SETTINGS: its max_concurrent_streams
  // decides how many may start here (settle).
  conn_->read();
  flush();
}

void Http2ClientConnection::settle() {
  settled_ = true;
  const uint32_t limit = std::min<uint32_t>(
      kMaxStreamsPerConnection,
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
  std::vector<Http2UpstreamStream*> waiting = std::move(waiting_);
  waiting_.clear();
  size_t open = streams_.size() + admitted_;
  for (Http2UpstreamStream* s : waiting) {
    if (open < limit) {
      ++open;
      admit(*s);
      s->ev_ready_ = true;
      events_.push_back(s);
      continue;
    }
    // No room here: another connection of the pool (or a new one).
    core::Ref<Http2ClientConnection> keep(this);
    s->conn_ =
        worker_.http2_pool().acquire(worker_, *cluster_, conn_->endpoint(), false, s->reused_);
    if (!s->conn_) {
      // The breaker refuses another connection: wait here (nghttp2 holds
      // the request until the peer's stream limit lets it start).
      s->conn_ = keep;
      ++open;
      admit(*s);
      s->ev_ready_ = true;
      events_.push_back(s);
      continue;
    }
    s->conn_->attach(*s);
  }
}

void Http2ClientConnection::on_upstream_read(const boost::system::error_code& ec, size_t bytes) {
  core::Ref<Http2ClientConnection> keep(this);
  if (closed_) return;
  if (ec || bytes == 0) {
    fail_all(ec ? UpstreamEvents::Failure::kReset : UpstreamEvents::Failure::kClosed,
             ec ? ec : boost::asio::error::eof);
    return;
  }
  core::Buffer& in = conn_->buffer();
  const std::string_view data = in.readable();
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  in.consume(data.size());
  if (settle_pending_) {
    settle_pending_ = false;
    settle();
  }
  if (rv < 0) {
    SPDLOG_DEBUG("upstream {}: HTTP/2 error: {}", conn_->endpoint().name(),
                 nghttp2_strerror(static_cast<int>(rv)));
    fail_all(UpstreamEvents::Failure::kProtocol, boost::asio::error::connection_aborted);
    return;
  }
  dispatch();
  flush();
  if (!closed_) conn_->read();
}

Http2UpstreamStream* Http2ClientConnection::find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

int Http2ClientConnection::on_begin_headers(int32_t id) {
  if (Http2UpstreamStream* s = find(id)) {
    s->in_trailers_ = s->head_done_;
    if (!s->in_trailers_) {
      s->fields_.clear();
      s->status_ = 0;
      s->header_bytes_ = 0;
    }
  }
  return 0;
}

int Http2ClientConnection::on_header(int32_t id, std::string_view name, std::string_view value) {
  Http2UpstreamStream* s = find(id);
  if (s == nullptr) return 0;
  s->header_bytes_ += name.size() + value.size() + 32;
  if (s->header_bytes_ > cluster_->config().max_response_headers_size) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
  }
  if (s->in_trailers_) {
    if (name.empty() || name[0] != ':') s->trailers_.emplace_back(name, value);
    return 0;
  }
  if (name == ":status") {
    int status = 0;
    for (char c : value) status = status * 10 + (c - '0');
    s->status_ = status;
    return 0;
  }
  if (!name.empty() && name[0] == ':') return 0;
  s->fields_.emplace_back(std::string(name), std::string(value));
  return 0;
}

void Http2ClientConnection::head_received(Http2UpstreamStream& s, bool end_stream) {
  // The head as HTTP/1.1 for the parser the rest of the proxy reads.
  std::string& head = s.head_;
  head.clear();
  fmt::format_to(std::back_inserter(head), "HTTP/1.1 {} {}\r\n", s.status_,
                 http::reason_phrase(s.status_));
  bool has_length = false;
  for (const auto& [name, value] : s.fields_) {
    if (name == "content-length") has_length = true;
    head.append(name).append(": ").append(value).append("\r\n");
  }
  head.append("\r\n");
  http::Limits limits;
  limits.max_head_size = std::max<size_t>(cluster_->config().max_response_headers_size * 2, 4096);
  limits.max_headers = cluster_->config().max_response_headers_count;
  http::ResponseParser parser(limits);
  s.resp_.headers.reserve(limits.max_headers);
  const http::HeadResult r = parser.feed(head, s.resp_);
  if (r.status != http::HeadResult::kDone || s.status_ < 100 || s.status_ > 999) {
    s.ev_failed_ = true;
    s.failure_kind_ = UpstreamEvents::Failure::kProtocol;
    events_.push_back(&s);
    return;
  }
  if (s.status_ < 200) {
    s.interim_pending_ = true;
    s.ev_interim_ = true;
    events_.push_back(&s);
    return;
  }
  s.head_done_ = true;
  s.framing_ = end_stream ? Framing::kNone : has_length ? Framing::kLength : Framing::kUnknown;
  if (!s.interim_pending_) {
    s.ev_headers_ = true;
    events_.push_back(&s);
  }
}

int Http2ClientConnection::on_frame_recv(uint8_t type, uint8_t flags, int32_t id) {
  if (type == NGHTTP2_SETTINGS && !(flags & NGHTTP2_FLAG_ACK) && !settled_) {
    settle_pending_ = true;  // after nghttp2 returns
    return 0;
  }
  if (type == NGHTTP2_GOAWAY) {
    goaway_ = true;  // no new streams here; nghttp2 refuses those above its last id
    return 0;
  }
  Http2UpstreamStream* s = id != 0 ? find(id) : nullptr;
  if (s == nullptr) return 0;
  const bool end = (flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (type == NGHTTP2_HEADERS && !s->in_trailers_) head_received(*s, end);
  if ((type == NGHTTP2_HEADERS || type == NGHTTP2_DATA) && end) {
    s->remote_end_ = true;
    if (s->awaiting_) {
      s->awaiting_ = false;
      s->ev_body_ = true;
      events_.push_back(s);
    }
  }
  return 0;
}

int Http2ClientConnection::on_data(int32_t id, const uint8_t* data, size_t len) {
  Http2UpstreamStream* s = find(id);
  if (s == nullptr) {
    nghttp2_session_consume(session_, id, len);
    return 0;
  }
  // Reserved once to the stream window (which bounds what is buffered), so
  // appending never moves bytes already offered to the stream.
  if (s->body_.capacity() < kStreamWindow) {
    s->body_.reserve(std::max<size_t>(kStreamWindow, s->body_.size() + len));
  }
  s->body_.append(reinterpret_cast<const char*>(data), len);
  if (s->awaiting_) {
    s->awaiting_ = false;
    s->ev_body_ = true;
    events_.push_back(s);
  }
  return 0;
}

int Http2ClientConnection::on_stream_close(int32_t id, uint32_t code) {
  Http2UpstreamStream* s = find(id);
  if (s == nullptr) return 0;
  s->closed_ = true;
  streams_.erase(id);
  if (s->remote_end_ && code == NGHTTP2_NO_ERROR) return 0;  // complete
  // Unprocessed (refused, or above a GOAWAY's last stream id): safe to retry.
  s->refused_ = code == NGHTTP2_REFUSED_STREAM && !s->head_done_;
  s->ev_failed_ = true;
  s->failure_kind_ = UpstreamEvents::Failure::kReset;
  events_.push_back(s);
  return 0;
}

long Http2ClientConnection::read_request(int32_t id, uint8_t* buf, size_t length, uint32_t* flags) {
  Http2UpstreamStream* s = find(id);
  if (s == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  bool written = false;
  const long n =
      s->out_.read_frame(session_, id, buf, length, flags, s->request_trailers_, written);
  if (written) {
    s->ev_written_ = true;
    events_.push_back(s);
  }
  return n;
}

void Http2ClientConnection::dispatch() {
  if (in_dispatch_) return;
  core::Ref<Http2ClientConnection> keep(this);
  in_dispatch_ = true;
  for (size_t i = 0; i < events_.size(); ++i) {
    Http2UpstreamStream* s = events_[i];
    if (s == nullptr) continue;
    // One event per pass: the callback may end the stream (detach clears
    // its entries, including the one queued again here).
    bool* flag = s->ev_ready_                             ? &s->ev_ready_
                 : s->ev_written_                         ? &s->ev_written_
                 : s->ev_interim_                         ? &s->ev_interim_
                 : s->ev_headers_ && !s->interim_pending_ ? &s->ev_headers_
                 : s->ev_body_                            ? &s->ev_body_
                 : s->ev_failed_                          ? &s->ev_failed_
                                                          : nullptr;
    if (flag == nullptr) continue;
    *flag = false;
    if (s->ev_ready_ || s->ev_written_ || s->ev_interim_ || s->ev_body_ || s->ev_failed_ ||
        (s->ev_headers_ && !s->interim_pending_)) {
      events_.push_back(s);
    }
    UpstreamEvents& ev = s->events_;
    if (flag == &s->ev_ready_) {
      ev.on_upstream_ready(connect_error_);
    } else if (flag == &s->ev_written_) {
      ev.on_upstream_written({});
    } else if (flag == &s->ev_interim_) {
      ev.on_response_interim(s->resp_);
    } else if (flag == &s->ev_headers_) {
      ev.on_response_headers(s->resp_, s->framing_);
    } else if (flag == &s->ev_body_) {
      ev.on_response_body();
    } else {
      ev.on_upstream_failed(s->failure_kind_, boost::asio::error::connection_reset);
    }
  }
  events_.clear();
  in_dispatch_ = false;
}

void Http2ClientConnection::schedule() {
  if (dispatch_posted_ || in_dispatch_) return;
  dispatch_posted_ = true;
  boost::asio::post(worker_.io(), [self = core::Ref<Http2ClientConnection>(this)] {
    self->dispatch_posted_ = false;
    self->dispatch();
    self->flush();
  });
}

void Http2ClientConnection::flush() {
  if (writing_ || flushing_ || closed_ || session_ == nullptr) return;
  flushing_ = true;
  bool failed = false;
  for (;;) {
    while (out_.size() < kMaxOutput) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        failed = true;
        break;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (out_.empty() || failed) break;
    out_spans_.clear();
    http::add_span(out_spans_, out_);
    boost::system::error_code ec;
    if (conn_->transport().write_now(out_spans_, ec)) {
      out_.clear();
      continue;
    }
    if (ec) {
      failed = true;
      break;
    }
    writing_ = true;
    conn_->transport().async_write(
        out_spans_, [self = core::Ref<Http2ClientConnection>(this)](
                        const boost::system::error_code& ec) { self->on_written(ec); });
    break;
  }
  flushing_ = false;
  if (!events_.empty()) schedule();
  if (failed) {
    boost::asio::post(worker_.io(), [self = core::Ref<Http2ClientConnection>(this)] {
      self->fail_all(UpstreamEvents::Failure::kReset, boost::asio::error::broken_pipe);
    });
    return;
  }
  // A connection told to go away closes once its last stream is done.
  if (!writing_ && goaway_ && streams() == 0) close();
}

void Http2ClientConnection::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  if (closed_) return;
  if (ec) {
    fail_all(UpstreamEvents::Failure::kReset, ec);
    return;
  }
  out_.clear();
  flush();
}

void Http2ClientConnection::fail_all(UpstreamEvents::Failure what,
                                     const boost::system::error_code& ec) {
  core::Ref<Http2ClientConnection> keep(this);
  for (auto& [id, s] : streams_) {
    s->closed_ = true;
    s->ev_failed_ = true;
    s->failure_kind_ = what;
    events_.push_back(s);
  }
  streams_.clear();
  SPDLOG_DEBUG("upstream {}: HTTP/2 connection failed: {}", conn_->endpoint().name(), ec.message());
  close();
  dispatch();
}

void Http2ClientConnection::close() {
  if (closed_) return;
  closed_ = true;
  conn_->set_owner(nullptr);
  conn_->close();
  worker_.http2_pool().remove(*this);
}

// ---- the pool ----

core::Ref<Http2ClientConnection> Http2Pool::acquire(Worker& worker,
                                                    upstream::ClusterRuntime& cluster,
                                                    upstream::Endpoint& endpoint, bool fresh,
                                                    bool& reused) {
  if (!fresh) {
    for (const auto& c : connections_) {
      if (&c->cluster() == &cluster && &c->transport().endpoint() == &endpoint && c->usable() &&
          c->has_room()) {
        reused = c->transport().requests > 0;
        return c;
      }
    }
  }
  reused = false;
  bool transport_reused = false;
  core::Ref<upstream::UpstreamConnection> transport =
      cluster.acquire(endpoint, transport_reused, /*fresh=*/true);
  if (!transport) return nullptr;
  core::Ref<Http2ClientConnection> c(
      new Http2ClientConnection(worker, cluster, std::move(transport)));
  connections_.push_back(c);
  c->start();
  return c;
}

void Http2Pool::remove(Http2ClientConnection& c) {
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == &c) {
      core::Ref<Http2ClientConnection> keep = std::move(*it);
      connections_.erase(it);
      return;
    }
  }
}

void Http2Pool::close_idle(Clock::time_point now, bool all) {
  std::vector<core::Ref<Http2ClientConnection>> expired;
  for (const auto& c : connections_) {
    if (c->streams() != 0) continue;
    const auto idle = c->cluster().config().idle_timeout;
    if (all || now - c->idle_since() >= idle) expired.push_back(c);
  }
  for (auto& c : expired) c->close();
}

}  // namespace sidecar::proxy
