#include "proxy/http1_server.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "accesslog/entry.h"
#include "core/coarse_clock.h"
#include "http/local_reply.h"
#include "proxy/http2_server.h"
#include "proxy/trailers.h"
#include "proxy/worker.h"

namespace sidecar::proxy {
namespace {

using boost::asio::ip::tcp;
using http::add_span;
using Clock = Http1ServerConnection::Clock;

using core::kNever;
// How long a closing connection keeps reading (and discarding) so that the
// client gets the response before the kernel answers its unread bytes with
// a reset [RFC 9112 9.6].
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr std::string_view kHttp11 = "HTTP/1.1";

// Moves a view into [from, from + n) to the same place in `to`.
void rebase(std::string_view& v, const char* from, size_t n, const char* to) {
  if (v.data() >= from && v.data() < from + n)
    v = std::string_view(to + (v.data() - from), v.size());
}

}  // namespace

// What a request needs while it is read and answered, and nothing between
// requests: taken when the first bytes of a request arrive, given back when
// the connection goes idle, so an idle connection holds only the
// connection object itself.
struct Http1ServerConnection::Exchange {
  http::RequestHead req;
  std::string head_copy;  // the request head, once moved out of the read buffer
  std::vector<std::string_view> chunk_views;
  Spans out;         // the response being written
  std::string head;  // status line and the lines the codec adds
  http::ChunkEncoder chunks;
  http::ChunkedDecoder chunked;  // the request body's, when chunked
  Trailers request_trailers;     // of a chunked body passed on decoded (to HTTP/2)
};

namespace {

// Per thread (a worker's connections run on its thread): exchanges that
// were used, with their vectors' capacity, for the next requests.
struct FreeExchanges {
  std::vector<Http1ServerConnection::Exchange*> list;
  ~FreeExchanges() {
    for (auto* x : list) delete x;
    gone = true;
  }
  static thread_local bool gone;
};
thread_local bool FreeExchanges::gone = false;
thread_local FreeExchanges t_free_exchanges;

// Enough for the concurrency of a busy worker; beyond it, freed.
constexpr size_t kMaxFreeExchanges = 256;
// Longer strings and arrays than this (a large head) are not kept.
constexpr size_t kMaxKeptCapacity = 16 * 1024;  // bytes

}  // namespace

void Http1ServerConnection::ExchangeDeleter::operator()(Exchange* x) const {
  if (FreeExchanges::gone || t_free_exchanges.list.size() >= kMaxFreeExchanges ||
      x->head_copy.capacity() > kMaxKeptCapacity || x->head.capacity() > kMaxKeptCapacity) {
    delete x;
    return;
  }
  x->req.clear();
  x->head_copy.clear();
  x->chunk_views.clear();
  x->out.clear();
  x->head.clear();
  x->request_trailers.clear();
  t_free_exchanges.list.push_back(x);
}

void Http1ServerConnection::take_exchange() {
  if (x_) return;
  auto& free = t_free_exchanges.list;
  if (FreeExchanges::gone || free.empty()) {
    x_.reset(new Exchange);
    // Enough for most requests (a browser sends 10-20 fields); a longer head
    // grows the array once, and the grown exchange is reused.
    x_->req.headers.reserve(std::min<size_t>(listener_->limits.max_headers, 32));
    x_->out.reserve(16);
    return;
  }
  x_.reset(free.back());
  free.pop_back();
}

Http1ServerConnection::Http1ServerConnection(Worker& worker, const ListenerRuntime& listener,
                                             tcp::socket socket, const tcp::endpoint& peer)
    : worker_(worker),
      snapshot_(worker.snapshot_ptr()),
      listener_(&listener),
      direction_(listener.config->direction),
      transport_(std::move(socket)),
      parser_(listener.limits) {
  info_.worker = &worker;
  info_.peer = peer;
  if (peer.address().is_v6() && peer.address().to_v6().is_v4_mapped()) {
    info_.peer.address(
        boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, peer.address().to_v6()));
  }
  info_.listener_stats = listener.stats[worker.index()];
  info_.listener_stats->connections_active.add();
  info_.listener_stats->connections_total.add();
  worker_.add_connection(this);
}

Http1ServerConnection::~Http1ServerConnection() = default;

void Http1ServerConnection::start() {
  boost::system::error_code ec;
  tcp::socket& socket = transport_.socket();
  socket.set_option(tcp::no_delay(true), ec);
  socket.non_blocking(true, ec);
  last_activity_ = core::CoarseClock::now();
  if (listener_->tls) {
    // The handshake counts against the request headers timeout, so a client
    // that connects and says nothing is closed as soon as a silent HTTP one.
    transport_.set_secure(listener_->tls->get()->new_session(socket.native_handle()));
    phase_ = Phase::kHandshake;
    const auto t = listener_->config->request_headers_timeout;
    head_deadline_ = t.count() > 0 ? last_activity_ + t : kNever;
    arm_timer();
    transport_.async_handshake(
        [self = core::Ref<Http1ServerConnection>(this)](const boost::system::error_code& ec) {
          self->on_handshake(ec);
        });
    return;
  }
  arm_timer();
  read();
}

void Http1ServerConnection::on_handshake(const boost::system::error_code& ec) {
  if (phase_ != Phase::kHandshake) return;
  if (ec) {
    handshake_failed(ec);
    return;
  }
  const net::TlsInfo& tls = transport_.secure()->info();
  info_.tls = &tls;
  info_.listener_stats->tls_handshakes[tls.version == "TLSv1.3" ? 1 : 0].add();
  if (!tls.peer_cert_sha256.empty()) {
    // Envoy's x-forwarded-client-cert element for this client.
    auto cert = std::make_shared<DownstreamInfo::ClientCert>();
    std::string& x = cert->xfcc;
    x = "Hash=" + tls.peer_cert_sha256;
    x += ";Subject=\"";
    for (char c : tls.peer_subject) {
      if (c == '"' || c == '\\') x += '\\';
      x += c;
    }
    x += '"';
    for (const std::string& u : tls.peer_uri_sans) x.append(";URI=").append(u);
    for (const std::string& d : tls.peer_dns_sans) x.append(";DNS=").append(d);
    for (const std::string& u : tls.peer_uri_sans) {
      if (!cert->peer_uri_sans.empty()) cert->peer_uri_sans += ',';
      cert->peer_uri_sans += u;
    }
    info_.client_cert = std::move(cert);
  }
  if (tls.alpn == "h2") {
    hand_over_to_http2({});
    return;
  }
  phase_ = Phase::kIdle;
  last_activity_ = core::CoarseClock::now();
  arm_timer();
  read();
}

bool Http1ServerConnection::sniff_http2() {
  const config::ListenerProtocol protocol = listener_->config->protocol;
  if (sniffed_ || protocol == config::ListenerProtocol::kHttp1) return false;
  const std::string_view in = in_.readable();
  const size_t n = std::min(in.size(), kHttp2Preface.size());
  if (in.substr(0, n) != kHttp2Preface.substr(0, n)) {
    sniffed_ = true;
    if (protocol != config::ListenerProtocol::kH2c) return false;
    SPDLOG_DEBUG("{}: not HTTP/2 on an h2c listener", info_.peer_ip());
    close();  // h2c speaks HTTP/2 only (prior knowledge)
    return true;
  }
  if (n < kHttp2Preface.size()) return false;  // the parser waits for more
  hand_over_to_http2(in);
  return true;
}

void Http1ServerConnection::hand_over_to_http2(std::string_view received) {
  core::Ref<Http2ServerConnection> h2(
      new Http2ServerConnection(worker_, snapshot_, *listener_, std::move(transport_), info_));
  // The HTTP/2 connection owns the socket, its TLS session and the
  // listener's active-connection count from now on.
  phase_ = Phase::kClosed;
  const core::Ref<Http1ServerConnection> keep(this);
  cancel_timer();
  worker_.remove_connection(this);
  h2->start(received);
}

void Http1ServerConnection::handshake_failed(const boost::system::error_code& ec) {
  const net::TlsError reason = net::classify(ec);
  info_.listener_stats->tls_handshake_errors[static_cast<size_t>(reason) - 1].add();
  SPDLOG_DEBUG("{}: TLS handshake failed: {}", info_.peer_ip(),
               transport_.secure() != nullptr && !transport_.secure()->failure_reason().empty()
                   ? transport_.secure()->failure_reason()
                   : ec.message());
  close();
}

void Http1ServerConnection::refresh_snapshot() {
  const std::shared_ptr<const Snapshot>& current = worker_.snapshot_ptr();
  if (current == snapshot_) return;
  const ListenerRuntime* l = current->find(listener_->config->name);
  if (l == nullptr) {
    keep_alive_ = false;  // finish this request on the old config, then close
    return;
  }
  snapshot_ = current;
  listener_ = l;
  parser_ = http::RequestParser(l->limits);
}

void Http1ServerConnection::drain() {
  drain_requested_ = true;
  if ((phase_ == Phase::kIdle || phase_ == Phase::kHandshake) && !writing_) {
    close();
    return;
  }
  keep_alive_ = false;
}

void Http1ServerConnection::close() {
  if (phase_ == Phase::kClosed) return;
  const core::Ref<Http1ServerConnection> keep(this);  // cancel_timer() may drop the last other one
  if (stream_) {
    stream_->on_downstream_reset(boost::asio::error::operation_aborted);
    release_stream();
  }
  phase_ = Phase::kClosed;
  info_.listener_stats->connections_active.sub();
  cancel_timer();
  transport_.close();
  worker_.remove_connection(this);
}

void Http1ServerConnection::new_stream() { stream_ = worker_.acquire_stream(); }

void Http1ServerConnection::release_stream() { worker_.release_stream(std::move(stream_)); }

// ---- reads and request heads ----

void Http1ServerConnection::read() {
  if (reading_ || phase_ == Phase::kClosed) return;
  if ((phase_ == Phase::kIdle || phase_ == Phase::kClosing) && in_.empty()) {
    wait_readable();
    return;
  }
  if (!in_.has_storage()) in_.reserve(kBufferSize);
  if (last_read_filled_ && in_.empty() && in_.capacity() < kMaxBufferSize) {
    in_.reserve(in_.capacity() * 2);
  }
  if (in_.write_space() == 0) {
    if (phase_ == Phase::kActive && head_in_buffer_) detach_head();
    in_.compact();
    // Only a head (bounded by the parser's limit) can fill the buffer.
    if (in_.write_space() == 0) in_.reserve(in_.capacity() * 2);
  }
  reading_ = true;
  transport_.async_read_some(
      boost::asio::buffer(in_.write_ptr(), in_.write_space()),
      [self = core::Ref<Http1ServerConnection>(this)](const boost::system::error_code& ec,
                                                      size_t n) { self->on_read(ec, n); });
}

void Http1ServerConnection::wait_readable() {
  // Nothing buffered: the read buffer goes back to the pool until bytes
  // arrive, and so does the request state (an idle keep-alive connection
  // holds neither).
  in_.release();
  if (!writing_) x_.reset();
  reading_ = true;
  transport_.async_read_into(
      in_, kBufferSize,
      [self = core::Ref<Http1ServerConnection>(this)](const boost::system::error_code& ec,
                                                      size_t n) { self->on_read(ec, n); });
}

void Http1ServerConnection::on_read(const boost::system::error_code& ec, size_t bytes) {
  reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kClosing) {
    if (ec || bytes == 0) {
      close();
      return;
    }
    in_.clear();
    read();
    return;
  }
  if (!ec && bytes == 0 && tunnel_ && stream_) {
    // The client ended its side of the tunnel: the end of the request
    // body; the upstream's side goes on until it closes too.
    tunnel_eof_ = true;
    if (awaiting_body_) {
      awaiting_body_ = false;
      stream_->on_request_body();
    }
    return;
  }
  if (ec || bytes == 0) {
    if (stream_) {
      stream_->on_downstream_reset(ec ? ec : boost::asio::error::eof);
      release_stream();
    }
    close();
    return;
  }
  last_read_filled_ = in_.write_space() == bytes;
  in_.commit(bytes);
  if (phase_ == Phase::kIdle) {
    first_byte_ = Clock::now();  // the request's start: its duration is reported
    last_activity_ = first_byte_;
  } else {
    last_activity_ = core::CoarseClock::now();
  }
  take_exchange();
  if (phase_ == Phase::kActive) {
    if (awaiting_body_ && stream_) {
      awaiting_body_ = false;
      stream_->on_request_body();
    }
    return;
  }
  process_head();
}

void Http1ServerConnection::process_head() {
  if (!sniffed_ && sniff_http2()) return;
  const http::HeadResult r = parser_.feed(in_.readable(), x_->req);
  if (r.status == http::HeadResult::kNeedMore) {
    if (phase_ == Phase::kIdle) {
      phase_ = Phase::kHead;
      const auto t = listener_->config->request_headers_timeout;
      head_deadline_ = t.count() > 0 ? last_activity_ + t : kNever;
      arm_timer();
    }
    read();
    return;
  }
  phase_ = Phase::kActive;
  head_in_buffer_ = false;
  head_size_ = 0;
  body_given_ = 0;
  awaiting_body_ = false;
  close_after_ = false;
  if (r.status == http::HeadResult::kError) {
    SPDLOG_DEBUG("{}: rejected request: {}", info_.peer_ip(), http::to_string(r.error));
    const int status = http::status_for(r.error);
    // The method, when the request line was read: an answer to HEAD has no
    // body [RFC 9110 9.3.2].
    const http::Method method = x_->req.method_name.empty() ? http::Method::kGet : x_->req.method;
    version_minor_ = 1;
    is_head_ = method == http::Method::kHead;
    keep_alive_ = false;
    body_complete_ = false;
    new_stream();
    stream_->start_rejected(
        *this, info_, snapshot_, *listener_, first_byte_, method, static_cast<size_t>(r.error),
        status, fmt::format("{}: {}\n", http::reason_phrase(status), http::to_string(r.error)),
        accesslog::kDownstreamProtocolError);
    return;
  }
  head_size_ = r.consumed;
  head_in_buffer_ = true;
  tunnel_ = tunnel_eof_ = false;
  x_->chunks.set_trailers({});
  version_minor_ = x_->req.version_minor;
  is_head_ = x_->req.method == http::Method::kHead;
  keep_alive_ = x_->req.keep_alive() && !drain_requested_;
  refresh_snapshot();
  body_ = x_->req.body;
  remaining_ = x_->req.content_length;
  x_->chunked = http::ChunkedDecoder(listener_->limits);
  body_complete_ = body_ == http::BodyKind::kNone;
  if (body_complete_ && in_.size() == head_size_) {
    // Nothing else is buffered: the head moves aside (a copy of its few
    // hundred bytes into the exchange) and the read buffer goes back to the
    // pool while the request is in flight. Before the stream starts, so that
    // no view of the head into the buffer exists yet.
    detach_head();
    in_.release();
  }
  new_stream();
  stream_->start(*this, info_, snapshot_, *listener_, x_->req, first_byte_);
  arm_timer();  // the stream's idle deadline, if it is still on
}

void Http1ServerConnection::detach_head() {
  if (!head_in_buffer_) return;
  const char* from = in_.readable().data();
  x_->head_copy.assign(from, head_size_);
  const char* to = x_->head_copy.data();
  rebase(x_->req.head, from, head_size_, to);
  rebase(x_->req.method_name, from, head_size_, to);
  rebase(x_->req.target, from, head_size_, to);
  for (http::HeaderField& f : x_->req.headers) {
    rebase(f.name, from, head_size_, to);
    rebase(f.value, from, head_size_, to);
  }
  in_.consume(head_size_);
  head_in_buffer_ = false;
}

// ---- the request body ----

BodyBatch Http1ServerConnection::request_body(Stream&, Spans& out, bool raw_chunked_ok) {
  BodyBatch b;
  if (body_complete_) {
    b.end = true;
    return b;
  }
  std::string_view avail = in_.readable();
  if (head_in_buffer_) avail.remove_prefix(head_size_);
  if (tunnel_) {
    // Upgraded: every byte is the tunnel's, until the client's end of stream.
    add_span(out, avail.data(), avail.size());
    b.consumed = avail.size();
    body_complete_ = tunnel_eof_;
  } else if (body_ == http::BodyKind::kContentLength) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(avail.size(), remaining_));
    remaining_ -= take;
    add_span(out, avail.data(), take);
    b.consumed = take;
    body_complete_ = remaining_ == 0;
  } else {
    x_->chunk_views.clear();
    const auto r = x_->chunked.feed(avail, raw_chunked_ok ? nullptr : &x_->chunk_views);
    if (r.error != http::ParseError::kNone) {
      b.error = r.error;
      return b;
    }
    if (raw_chunked_ok) {
      add_span(out, avail.data(), r.consumed);
      b.raw_chunked = true;
    } else {
      for (std::string_view v : x_->chunk_views) add_span(out, v);
      if (r.done && !x_->chunked.trailer_lines().empty()) {
        // Passed on decoded (to HTTP/2): the trailer section as fields.
        x_->request_trailers.clear();
        parse_trailer_lines(x_->chunked.trailer_lines(), x_->request_trailers);
        if (!x_->request_trailers.empty()) b.trailers = &x_->request_trailers;
      }
    }
    b.consumed = r.consumed;
    body_complete_ = r.done;
  }
  b.end = body_complete_;
  body_given_ = b.consumed;
  return b;
}

void Http1ServerConnection::consume_request_body(Stream&, size_t bytes) {
  // The body streams through: the head moves aside for good, so that the
  // buffer can be compacted and grown.
  detach_head();
  in_.consume(std::min(bytes, in_.size()));
  body_given_ -= std::min(bytes, body_given_);
}

void Http1ServerConnection::await_request_body(Stream& s) {
  if (body_complete_ || phase_ != Phase::kActive) return;
  awaiting_body_ = true;
  if (tunnel_ && tunnel_eof_) {
    awaiting_body_ = false;
    s.on_request_body();
    return;
  }
  read();
}

void Http1ServerConnection::set_response_trailers(Stream&, const Trailers& trailers) {
  // Sent in the last chunk of a chunked response (an HTTP/1.0 client, whose
  // response is delimited by the close, gets none).
  x_->chunks.set_trailers(format_trailer_lines(trailers));
}

void Http1ServerConnection::start_tunnel(Stream&) {
  tunnel_ = true;
  tunnel_eof_ = false;
  body_ = http::BodyKind::kUntilClose;
  body_complete_ = false;
  keep_alive_ = false;  // the connection ends with the tunnel
}

// ---- the response ----

void Http1ServerConnection::send_interim(Stream&, const http::ResponseHead& head) {
  x_->out.clear();
  x_->head.clear();
  if (!head.head.empty()) {
    // An upstream's 1xx, as HTTP/1.1, without its hop-by-hop fields.
    const std::string_view h = head.head;
    add_span(x_->out, kHttp11);
    add_span(x_->out, h.data() + 8, head.start_line_end - 8);
    const http::HopByHop hop_by_hop(head);
    for (const http::HeaderField& f : head.headers) {
      if (!hop_by_hop(f.name))
        add_span(x_->out, h.data() + f.line_begin, f.line_end - f.line_begin);
    }
    add_span(x_->out, "\r\n", 2);
  } else {
    fmt::format_to(std::back_inserter(x_->head), "HTTP/1.1 {} {}\r\n\r\n", head.status,
                   http::reason_phrase(head.status));
    add_span(x_->out, x_->head);
  }
  write();
}

void Http1ServerConnection::send_response(Stream& s, const OutgoingResponse& o, Spans& body,
                                          bool raw_chunked, bool end) {
  chunk_response_ = false;
  bool add_te = false;
  if (o.framing == Framing::kUnknown) {
    if (version_minor_ == 1) {
      add_te = true;
      chunk_response_ = !raw_chunked;
    } else {
      keep_alive_ = false;  // an HTTP/1.0 client: the close delimits the body
    }
  }
  // A request not read to its end when the response starts: close after it.
  close_after_ = !keep_alive_ || drain_requested_ || !body_complete_ || s.draining();
  // A 101 switches protocols: it says so, and the connection's end is the
  // tunnel's [RFC 9110 7.8, 15.2.2], whatever else the head would say.
  const bool switching = o.status == 101 && tunnel_;
  if (switching) close_after_ = false;
  x_->out.clear();
  x_->head.clear();
  const http::ResponseHead* r = o.response;
  if (r != nullptr && !r->head.empty()) {
    const std::string_view h = r->head;
    if (r->version_minor == 1) {
      add_span(x_->out, h.data(), r->start_line_end);
    } else {
      add_span(x_->out, kHttp11);
      add_span(x_->out, h.data() + 8, r->start_line_end - 8);
    }
    for (size_t i = 0; i < r->headers.size(); ++i) {
      if (o.skip != nullptr && (*o.skip)[i] != 0) continue;
      const http::HeaderField& f = r->headers[i];
      add_span(x_->out, h.data() + f.line_begin, f.line_end - f.line_begin);
    }
  } else {
    fmt::format_to(std::back_inserter(x_->head), "HTTP/1.1 {} {}\r\n", o.status,
                   http::reason_phrase(o.status));
    if (r != nullptr) {
      for (size_t i = 0; i < r->headers.size(); ++i) {
        if (o.skip != nullptr && (*o.skip)[i] != 0) continue;
        x_->head.append(r->headers[i].name).append(": ").append(r->headers[i].value).append("\r\n");
      }
    }
  }
  const size_t tail = x_->head.size();
  x_->head.append(o.extra);
  if (add_te) x_->head.append("transfer-encoding: chunked\r\n");
  // A response that has no body but whose status allows one (an HTTP/2
  // upstream's HEADERS with END_STREAM, a gRPC Trailers-Only answer) says
  // so, or an HTTP/1.1 client would read until the connection closes.
  if (o.framing == Framing::kNone && !switching && !is_head_ && o.status >= 200 &&
      o.status != 204 && o.status != 304 && (r == nullptr || !r->has_content_length)) {
    x_->head.append("content-length: 0\r\n");
  }
  if (switching) {
    const http::HeaderField* u = r != nullptr ? r->find("upgrade") : nullptr;
    x_->head.append("upgrade: ")
        .append(u != nullptr ? u->value : std::string_view("websocket"))
        .append("\r\nconnection: upgrade\r\n");
  }
  if (close_after_) {
    x_->head.append("connection: close\r\n");
  } else if (version_minor_ == 0) {
    x_->head.append("connection: keep-alive\r\n");
  }
  x_->head.append("\r\n");
  if (tail > 0) add_span(x_->out, x_->head.data(), tail);
  add_span(x_->out, x_->head.data() + tail, x_->head.size() - tail);
  add_body(body, raw_chunked, end);
  write();
}

void Http1ServerConnection::send_body(Stream&, Spans& body, bool raw_chunked, bool end) {
  x_->out.clear();
  add_body(body, raw_chunked, end);
  write();
}

void Http1ServerConnection::add_body(Spans& body, bool raw_chunked, bool end) {
  if (is_head_) return;  // a response to HEAD has no body, whatever came
  if (chunk_response_) {
    x_->chunks.encode(body, end, x_->out);
    return;
  }
  for (const auto& b : body) add_span(x_->out, static_cast<const char*>(b.data()), b.size());
}

void Http1ServerConnection::send_local_reply(Stream& s, int status, std::string_view content_type,
                                             std::string_view body, std::string_view extra_headers,
                                             bool close) {
  close_after_ = close || !keep_alive_ || drain_requested_ || !body_complete_ || s.draining();
  x_->head.clear();
  fmt::format_to(std::back_inserter(x_->head),
                 "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n", status,
                 http::reason_phrase(status), content_type, body.size());
  x_->head.append(extra_headers);
  if (close_after_) x_->head.append("connection: close\r\n");
  x_->head.append("\r\n");
  // A response to HEAD has no body [RFC 9110 9.3.2], errors included.
  if (!is_head_) x_->head.append(body);
  x_->out.clear();
  add_span(x_->out, x_->head);
  write();
}

void Http1ServerConnection::write() {
  writing_ = true;
  boost::system::error_code ec;
  if (transport_.write_now(x_->out, ec) || ec) {
    on_written(ec);
    return;
  }
  transport_.async_write(x_->out,
                         [self = core::Ref<Http1ServerConnection>(this)](
                             const boost::system::error_code& ec) { self->on_written(ec); });
}

void Http1ServerConnection::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  if (phase_ == Phase::kClosed || phase_ == Phase::kClosing) return;
  last_activity_ = core::CoarseClock::now();
  if (stream_) stream_->on_downstream_written(ec);
}

// ---- ends of a request ----

void Http1ServerConnection::finished(Stream&) {
  release_stream();
  size_t n = body_given_;
  body_given_ = 0;
  if (head_in_buffer_) n += head_size_;
  head_in_buffer_ = false;
  awaiting_body_ = false;
  in_.consume(std::min(n, in_.size()));
  if (!body_complete_ || close_after_ || !keep_alive_ || drain_requested_) {
    begin_close();
    return;
  }
  phase_ = Phase::kIdle;
  parser_.reset();
  last_activity_ = core::CoarseClock::now();
  arm_timer();
  if (in_.empty()) {
    read();
  } else {
    // A pipelined request is already here. Posted, so a long pipeline of
    // requests answered at once does not recurse.
    boost::asio::post(transport_.socket().get_executor(),
                      [self = core::Ref<Http1ServerConnection>(this)] {
                        if (self->phase_ == Phase::kIdle) {
                          self->first_byte_ = Clock::now();
                          self->process_head();
                        }
                      });
  }
}

void Http1ServerConnection::reset(Stream&) {
  release_stream();
  close();
}

std::string_view Http1ServerConnection::protocol(const Stream&) const {
  return version_minor_ == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

void Http1ServerConnection::begin_close() {
  if (phase_ == Phase::kClosing || phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosing;
  boost::system::error_code ec;
  transport_.shutdown_send(ec);
  if (ec) {
    close();
    return;
  }
  head_deadline_ = core::CoarseClock::now() + kLingerTimeout;
  arm_timer();
  if (!reading_) in_.clear();
  read();
}

// ---- timeouts ----

Clock::time_point Http1ServerConnection::deadline() const {
  const config::Listener& l = *listener_->config;
  switch (phase_) {
    case Phase::kIdle:
      return l.idle_timeout.count() > 0 ? last_activity_ + l.idle_timeout : kNever;
    case Phase::kHandshake:
    case Phase::kHead:
    case Phase::kClosing:
      return head_deadline_;
    case Phase::kActive:
      return stream_ ? stream_->deadline() : kNever;
    case Phase::kClosed:
      break;
  }
  return kNever;
}

void Http1ServerConnection::arm_timer() {
  core::arm_no_later(worker_.timers(), *this, *this, deadline());
}

void Http1ServerConnection::cancel_timer() { core::disarm(worker_.timers(), *this, *this); }

void Http1ServerConnection::on_expired() {
  const core::Ref<Http1ServerConnection> self(this, false);  // the armed entry's reference
  if (phase_ == Phase::kClosed) return;
  const Clock::time_point now = Clock::now();
  if (now < deadline()) {
    arm_timer();
    return;
  }
  switch (phase_) {
    case Phase::kHandshake:
      handshake_failed(boost::asio::error::timed_out);
      return;
    case Phase::kIdle:
    case Phase::kClosing:
    case Phase::kClosed:
      close();
      return;
    case Phase::kHead:
      SPDLOG_DEBUG("{}: request headers timeout", info_.peer_ip());
      phase_ = Phase::kActive;
      version_minor_ = 1;
      is_head_ = false;
      keep_alive_ = false;
      body_complete_ = false;
      new_stream();
      stream_->start_rejected(*this, info_, snapshot_, *listener_, first_byte_, http::Method::kGet,
                              kRejectHeadersTimeout, 408, "request headers timeout\n", 0);
      arm_timer();
      return;
    case Phase::kActive:
      if (stream_) stream_->on_timeout(now);
      arm_timer();
      return;
  }
}

}  // namespace sidecar::proxy
