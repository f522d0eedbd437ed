#include "proxy/http1_upstream.h"

#include "http/spans.h"
#include "proxy/trailers.h"

namespace sidecar::proxy {
namespace {

using http::add_span;
constexpr std::string_view kCrlf = "\r\n";

// Field lines of a head that did not arrive as HTTP/1.1 (or whose lines
// cannot be reused), formatted.
void append_fields(std::string& out, const OutgoingHead& h) {
  if (h.received == nullptr) return;
  for (size_t i = 0; i < h.received->headers.size(); ++i) {
    if (h.skip != nullptr && (*h.skip)[i] != 0) continue;
    const http::HeaderField& f = h.received->headers[i];
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
}

// The client takes trailers (TE: trailers, hop-by-hop, so said again on
// this hop): the proxy passes the upstream's on, to HTTP/2 clients too.
bool wants_trailers(const OutgoingRequest& req) {
  if (req.request == nullptr) return false;
  const http::HeaderField* te = req.request->find("te");
  return te != nullptr && te->value.find("trailers") != std::string_view::npos;
}

}  // namespace

Http1UpstreamStream::Http1UpstreamStream(upstream::ClusterRuntime& cluster, UpstreamEvents& events,
                                         bool fresh, upstream::Endpoint* endpoint)
    : cluster_(&cluster), events_(&events), fresh_(fresh), endpoint_(endpoint) {}

Http1UpstreamStream::~Http1UpstreamStream() { detach(); }

void Http1UpstreamStream::detach() {
  if (queued_) {
    queued_ = false;
    cluster_->cancel_wait(*this);
    if (endpoint_ != nullptr) endpoint_->stats->pending_requests.sub();
  }
  if (conn_) release(false);
}

void Http1UpstreamStream::recycle(upstream::ClusterRuntime& cluster, UpstreamEvents& events,
                                  bool fresh, upstream::Endpoint* endpoint) {
  detach();
  cluster_ = &cluster;
  events_ = &events;
  fresh_ = fresh;
  endpoint_ = endpoint;
  reused_ = pending_counted_ = queued_ = writing_ = request_done_ = false;
  chunk_encode_ = upgrade_ = tunnel_ = shutdown_after_ = false;
  method_ = http::Method::kGet;
  out_.clear();
  head_.clear();
  host_line_.clear();
  chunks_.set_trailers({});
  // The response state is set again by send_request.
  head_size_ = 0;
  head_done_ = head_pending_ = interim_ = awaiting_ = eof_ = done_ = broken_ = false;
  body_ = http::BodyKind::kNone;
  remaining_ = 0;
  resp_.clear();
  chunk_views_.clear();
  response_trailers_.clear();
}

stats::EndpointStats* Http1UpstreamStream::endpoint_stats() const {
  return conn_ ? conn_->endpoint().stats : nullptr;
}

upstream::Endpoint* Http1UpstreamStream::endpoint() const {
  return conn_ ? &conn_->endpoint() : nullptr;
}

std::string_view Http1UpstreamStream::host() const {
  return conn_ ? std::string_view(conn_->endpoint().name()) : std::string_view();
}

std::string_view Http1UpstreamStream::failure() const {
  return conn_ ? std::string_view(conn_->tls_failure()) : std::string_view();
}

void Http1UpstreamStream::start() { acquire(false); }

void Http1UpstreamStream::on_connection_available() {
  queued_ = false;
  endpoint_->stats->pending_requests.sub();
  acquire(true);
}

void Http1UpstreamStream::acquire(bool woken) {
  conn_ = endpoint_ != nullptr ? cluster_->acquire(*endpoint_, reused_, fresh_)
                               : cluster_->acquire(reused_, fresh_);
  if (!conn_) {
    // At max_connections: wait for one in the cluster's queue (bounded by
    // max_pending_requests; the stream's connect deadline ends the wait
    // with 503 UO); any other refusal, or a full queue: 503 UO at once.
    if (endpoint_ != nullptr && cluster_->wait_for_connection(*this, woken)) {
      queued_ = true;
      endpoint_->stats->pending_requests.add();
      return;
    }
    events_->on_upstream_ready(make_error_code(upstream::AttemptError::kOverflow));
    return;
  }
  conn_->set_owner(this);
  if (reused_) {
    events_->on_upstream_ready({});  // may end the stream: nothing after this
    return;
  }
  pending_counted_ = true;
  conn_->endpoint().stats->pending_requests.add();
  conn_->connect();
}

void Http1UpstreamStream::on_upstream_connected(const boost::system::error_code& ec) {
  if (pending_counted_) {
    pending_counted_ = false;
    conn_->endpoint().stats->pending_requests.sub();
  }
  if (ec) conn_->endpoint().stats->connect_failures.add();
  if (!ec && cluster_->config().protocol == config::UpstreamProtocol::kAuto &&
      cluster_->tls() != nullptr) {
    // `protocol: auto`: the endpoint picked by ALPN. Remembered; when it
    // took h2 (it learned HTTP/2 since), this connection cannot carry an
    // HTTP/1.1 request and the stream starts again with the HTTP/2 codec.
    const net::SecureLayer* tls = conn_->transport().secure();
    const bool h2 = tls != nullptr && tls->info().alpn == "h2";
    conn_->endpoint().alpn = h2 ? upstream::Endpoint::Alpn::kH2 : upstream::Endpoint::Alpn::kHttp1;
    if (h2) {
      cluster_->release(std::move(conn_), false);
      conn_ = nullptr;
      events_->on_upstream_ready(make_error_code(upstream::AttemptError::kAlpnMismatch));
      return;
    }
  }
  events_->on_upstream_ready(ec);
}

void Http1UpstreamStream::send_request(const OutgoingRequest& req, Spans& body, bool raw_chunked,
                                       bool end) {
  ++conn_->requests;
  method_ = req.request != nullptr ? req.request->method : http::Method::kGet;
  const config::Cluster& cluster = cluster_->config();
  http::Limits limits;
  limits.max_head_size = cluster.max_response_headers_size;
  limits.max_headers = cluster.max_response_headers_count;
  parser_ = http::ResponseParser(limits);
  chunked_ = http::ChunkedDecoder(limits);
  resp_.headers.reserve(limits.max_headers);
  head_done_ = head_pending_ = interim_ = awaiting_ = eof_ = done_ = broken_ = false;
  chunk_encode_ = req.framing == Framing::kUnknown && !raw_chunked;
  upgrade_ = !req.upgrade.empty();
  tunnel_ = shutdown_after_ = false;

  out_.clear();
  const http::RequestHead* r = req.request;
  const bool lines = r != nullptr && !r->head.empty();
  if (lines) {
    // Start line: forwarded as received when it already is origin-form
    // HTTP/1.1.
    const std::string_view head = r->head;
    if (req.path.data() == r->target.data() && !req.slash_first && r->version_minor == 1) {
      add_span(out_, head.data(), r->start_line_end);
    } else {
      head_.assign(req.method).append(" ");
      if (req.slash_first) head_.append("/");
      head_.append(req.path).append(" HTTP/1.1\r\n");
      add_span(out_, head_);
    }
    for (size_t i = 0; i < r->headers.size(); ++i) {
      if (req.skip != nullptr && (*req.skip)[i] != 0) continue;
      const http::HeaderField& f = r->headers[i];
      add_span(out_, head.data() + f.line_begin, f.line_end - f.line_begin);
    }
    host_line_.clear();
    if (!req.host_in_fields) host_line_.assign("host: ").append(req.authority).append("\r\n");
    if (req.framing == Framing::kUnknown) host_line_.append("transfer-encoding: chunked\r\n");
    if (upgrade_)
      host_line_.append("upgrade: ").append(req.upgrade).append("\r\nconnection: upgrade\r\n");
    if (wants_trailers(req)) host_line_.append("te: trailers\r\n");
    add_span(out_, host_line_);
    add_span(out_, req.extra);
    add_span(out_, kCrlf);
  } else {
    head_.assign(req.method).append(" ");
    if (req.slash_first) head_.append("/");
    head_.append(req.path).append(" HTTP/1.1\r\n");
    if (!req.host_in_fields) head_.append("host: ").append(req.authority).append("\r\n");
    append_fields(head_, req);
    if (req.framing == Framing::kUnknown) head_.append("transfer-encoding: chunked\r\n");
    if (upgrade_)
      head_.append("upgrade: ").append(req.upgrade).append("\r\nconnection: upgrade\r\n");
    if (wants_trailers(req)) head_.append("te: trailers\r\n");
    head_.append(req.extra).append("\r\n");
    add_span(out_, head_);
  }
  add_body(body, raw_chunked, end);
  conn_->read();  // the response pump
  write(end);
}

void Http1UpstreamStream::set_request_trailers(const Trailers& trailers) {
  chunks_.set_trailers(format_trailer_lines(trailers));
}

void Http1UpstreamStream::send_body(Spans& body, bool raw_chunked, bool end) {
  out_.clear();
  add_body(body, raw_chunked, end);
  write(end);
}

void Http1UpstreamStream::add_body(Spans& body, bool raw_chunked, bool end) {
  if (chunk_encode_) {
    chunks_.encode(body, end, out_);
    return;
  }
  for (const auto& b : body) add_span(out_, static_cast<const char*>(b.data()), b.size());
}

void Http1UpstreamStream::write(bool end) {
  writing_ = true;
  if (end) request_done_ = true;
  // The client ended its side of a tunnel: so does the proxy, once the
  // last bytes are out (a half close; the upstream's side goes on).
  shutdown_after_ = tunnel_ && end;
  boost::system::error_code ec;
  if (conn_->transport().write_now(out_, ec) || ec) {
    on_written(ec);
    return;
  }
  conn_->transport().async_write(out_, [self = conn_, this](const boost::system::error_code& ec) {
    // The stream may have released the connection meanwhile.
    if (self->owner() == this) on_written(ec);
  });
}

void Http1UpstreamStream::on_written(const boost::system::error_code& ec) {
  writing_ = false;
  if (ec) broken_ = true;
  if (shutdown_after_ && !ec) {
    shutdown_after_ = false;
    boost::system::error_code ignored;
    conn_->transport().shutdown_send(ignored);
  }
  events_->on_upstream_written(ec);
}

// ---- the response ----

void Http1UpstreamStream::on_upstream_read(const boost::system::error_code& ec, size_t bytes) {
  if (ec || bytes == 0) {
    const bool eof = !ec || ec == boost::asio::error::eof;
    broken_ = true;
    if (head_done_ && body_ == http::BodyKind::kUntilClose && eof) {
      eof_ = true;  // this response is delimited by the close
      if (awaiting_) {
        awaiting_ = false;
        events_->on_response_body();
      }
      return;
    }
    events_->on_upstream_failed(
        eof ? UpstreamEvents::Failure::kClosed : UpstreamEvents::Failure::kReset,
        ec ? ec : boost::asio::error::eof);
    return;
  }
  if (!head_done_) {
    if (!interim_) process_response();
    return;
  }
  if (awaiting_) {
    awaiting_ = false;
    events_->on_response_body();
  }
}

void Http1UpstreamStream::process_response() {
  core::Buffer& buf = conn_->buffer();
  while (!head_done_) {
    const http::HeadResult r = parser_.feed(buf.readable(), resp_);
    if (r.status == http::HeadResult::kNeedMore) {
      conn_->read();
      return;
    }
    if (r.status == http::HeadResult::kError) {
      broken_ = true;
      events_->on_upstream_failed(
          UpstreamEvents::Failure::kProtocol,
          boost::system::errc::make_error_code(boost::system::errc::protocol_error));
      return;
    }
    head_size_ = r.consumed;
    if (resp_.status >= 200) {
      head_done_ = head_pending_ = true;
      body_ = http::response_body_kind(resp_, method_);
      remaining_ = resp_.content_length;
      chunked_.reset();
      const Framing framing = body_ == http::BodyKind::kNone            ? Framing::kNone
                              : body_ == http::BodyKind::kContentLength ? Framing::kLength
                                                                        : Framing::kUnknown;
      events_->on_response_headers(resp_, framing);
      return;
    }
    if (resp_.status == 101 && upgrade_) {
      // Switched [RFC 9110 15.2.2]: the connection is the tunnel's now.
      // The head goes downstream without a body of its own; what follows
      // it is the tunnel's first bytes, offered as an until-close body.
      head_done_ = head_pending_ = tunnel_ = true;
      broken_ = true;  // never back to the pool
      chunk_encode_ = false;
      body_ = http::BodyKind::kUntilClose;
      events_->on_response_headers(resp_, Framing::kNone);
      return;
    }
    if (resp_.status == 101) {
      broken_ = true;
      events_->on_upstream_failed(
          UpstreamEvents::Failure::kProtocol,
          boost::system::errc::make_error_code(boost::system::errc::protocol_error));
      return;
    }
    interim_ = true;
    events_->on_response_interim(resp_);  // then consume_response_body(0)
    return;
  }
}

BodyBatch Http1UpstreamStream::response_body(Spans& out, bool raw_chunked_ok) {
  BodyBatch b;
  std::string_view avail = conn_->buffer().readable();
  if (head_pending_) avail.remove_prefix(head_size_);
  switch (body_) {
    case http::BodyKind::kNone:
      b.end = true;
      break;
    case http::BodyKind::kContentLength: {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(avail.size(), remaining_));
      remaining_ -= take;
      add_span(out, avail.data(), take);
      b.consumed = take;
      b.end = remaining_ == 0;
      break;
    }
    case http::BodyKind::kChunked: {
      chunk_views_.clear();
      const auto r = chunked_.feed(avail, raw_chunked_ok ? nullptr : &chunk_views_);
      if (r.error != http::ParseError::kNone) {
        broken_ = true;
        b.error = r.error;
        return b;
      }
      if (raw_chunked_ok) {
        add_span(out, avail.data(), r.consumed);
        b.raw_chunked = true;
      } else {
        for (std::string_view v : chunk_views_) add_span(out, v);
        if (r.done && !chunked_.trailer_lines().empty()) {
          response_trailers_.clear();
          parse_trailer_lines(chunked_.trailer_lines(), response_trailers_);
          if (!response_trailers_.empty()) b.trailers = &response_trailers_;
        }
      }
      b.consumed = r.consumed;
      b.end = r.done;
      break;
    }
    case http::BodyKind::kUntilClose:
      add_span(out, avail.data(), avail.size());
      b.consumed = avail.size();
      b.end = eof_;
      break;
  }
  if (b.end) done_ = true;
  return b;
}

void Http1UpstreamStream::consume_response_body(size_t bytes) {
  core::Buffer& buf = conn_->buffer();
  if (interim_) {
    interim_ = false;
    buf.consume(head_size_);
    parser_.reset();
    process_response();
    return;
  }
  if (head_pending_) {
    head_pending_ = false;
    bytes += head_size_;
  }
  buf.consume(bytes);
}

void Http1UpstreamStream::await_response_body() {
  if (eof_) {
    events_->on_response_body();
    return;
  }
  awaiting_ = true;
  conn_->read();
}

void Http1UpstreamStream::release(bool reusable) {
  if (!conn_) return;
  if (pending_counted_) {
    pending_counted_ = false;
    conn_->endpoint().stats->pending_requests.sub();
  }
  const bool ok = reusable && !writing_ && !broken_ && request_done_ && done_ && !head_pending_ &&
                  resp_.keep_alive() && body_ != http::BodyKind::kUntilClose;
  cluster_->release(std::move(conn_), ok);
  conn_ = nullptr;
}

}  // namespace sidecar::proxy
