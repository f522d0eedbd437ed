#include "proxy/http_connection.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "accesslog/writer.h"
#include "http/local_reply.h"
#include "proxy/worker.h"
#include "tls/acme_challenges.h"
#include "tls/tls.h"

namespace sidecar::proxy {
namespace {

using boost::asio::const_buffer;
using boost::asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = HttpConnection::Clock;

constexpr auto kNever = Clock::time_point::max();
// How long a closing connection keeps reading (and discarding) so that the
// client gets the response before the kernel answers its unread bytes with
// a reset [RFC 9112 9.6].
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kHttp11 = "HTTP/1.1";
constexpr std::string_view kSpaceHttp11Crlf = " HTTP/1.1\r\n";
constexpr std::string_view kSlash = "/";

// Appends a span, merged into the previous one when they are contiguous.
void add_span(std::vector<const_buffer>& out, const char* p, size_t n) {
  if (n == 0) return;
  if (!out.empty()) {
    const_buffer& last = out.back();
    if (static_cast<const char*>(last.data()) + last.size() == p) {
      last = const_buffer(last.data(), last.size() + n);
      return;
    }
  }
  out.emplace_back(p, n);
}
void add_span(std::vector<const_buffer>& out, std::string_view s) {
  add_span(out, s.data(), s.size());
}

uint64_t nanos(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

bool idempotent(http::Method m) {
  return m == http::Method::kGet || m == http::Method::kHead || m == http::Method::kOptions ||
         m == http::Method::kPut || m == http::Method::kDelete;
}

}  // namespace

std::vector<std::string> reject_reason_names() {
  std::vector<std::string> names;
  for (size_t i = 0; i < kRejectHeadersTimeout; ++i) {
    names.emplace_back(http::to_string(static_cast<http::ParseError>(i)));
  }
  names.emplace_back("request_headers_timeout");
  names.emplace_back("no_route");
  names.emplace_back("connect_not_supported");
  names.emplace_back("bad_request_target");
  return names;
}

HttpConnection::HttpConnection(Worker& worker, const ListenerRuntime& listener, tcp::socket socket,
                               const tcp::endpoint& peer)
    : worker_(worker),
      snapshot_(worker.snapshot_ptr()),
      listener_(&listener),
      direction_(listener.config->direction),
      transport_(std::move(socket)),
      timer_(worker.io()),
      in_(kBufferSize),
      parser_(listener.limits),
      req_chunked_(listener.limits) {
  const auto address = peer.address();
  peer_ip_ = address.is_v6() && address.to_v6().is_v4_mapped()
                 ? boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6())
                       .to_string()
                 : address.to_string();
  peer_address_ = address.is_v6() && !address.to_v6().is_v4_mapped()
                      ? fmt::format("[{}]:{}", peer_ip_, peer.port())
                      : fmt::format("{}:{}", peer_ip_, peer.port());
  lstats_ = listener.stats[worker.index()];
  lstats_->connections_active.add();
  lstats_->connections_total.add();
  req_.headers.reserve(listener.limits.max_headers);
  up_out_.reserve(16);
  down_out_.reserve(16);
  up_extra_.reserve(256);
  down_extra_.reserve(256);
  worker_.add_connection(this);
}

HttpConnection::~HttpConnection() = default;

void HttpConnection::start() {
  error_code ec;
  tcp::socket& socket = transport_.socket();
  socket.set_option(tcp::no_delay(true), ec);
  socket.non_blocking(true, ec);
  last_activity_ = Clock::now();
  if (listener_->tls) {
    // The handshake counts against the request headers timeout, so a client
    // that connects and says nothing is closed as soon as a silent HTTP one.
    transport_.set_secure(listener_->tls->get()->new_session(socket.native_handle()));
    phase_ = Phase::kHandshake;
    const auto t = listener_->config->request_headers_timeout;
    head_deadline_ = t.count() > 0 ? last_activity_ + t : kNever;
    arm_timer();
    transport_.async_handshake(
        [self = core::Ref<HttpConnection>(this)](const error_code& ec) { self->on_handshake(ec); });
    return;
  }
  arm_timer();
  read_downstream();
}

void HttpConnection::on_handshake(const error_code& ec) {
  if (phase_ != Phase::kHandshake) return;
  if (ec) {
    handshake_failed(ec);
    return;
  }
  const net::TlsInfo& info = transport_.secure()->info();
  tls_ = &info;
  lstats_->tls_handshakes[info.version == "TLSv1.3" ? 1 : 0].add();
  if (!info.peer_cert_sha256.empty()) {
    // Envoy's x-forwarded-client-cert element for this client.
    std::string& x = xfcc_;
    x = "Hash=" + info.peer_cert_sha256;
    x += ";Subject=\"";
    for (char c : info.peer_subject) {
      if (c == '"' || c == '\\') x += '\\';
      x += c;
    }
    x += '"';
    for (const std::string& u : info.peer_uri_sans) x.append(";URI=").append(u);
    for (const std::string& d : info.peer_dns_sans) x.append(";DNS=").append(d);
    for (const std::string& u : info.peer_uri_sans)
      peer_uri_sans_ += (peer_uri_sans_.empty() ? "" : ",") + u;
  }
  phase_ = Phase::kIdle;
  last_activity_ = Clock::now();
  arm_timer();
  read_downstream();
}

void HttpConnection::handshake_failed(const error_code& ec) {
  const net::TlsError reason = net::classify(ec);
  lstats_->tls_handshake_errors[static_cast<size_t>(reason) - 1].add();
  SPDLOG_DEBUG("{}: TLS handshake failed: {}", peer_ip_,
               transport_.secure() != nullptr && !transport_.secure()->failure_reason().empty()
                   ? transport_.secure()->failure_reason()
                   : ec.message());
  close();
}

void HttpConnection::refresh_snapshot() {
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

void HttpConnection::drain() {
  drain_requested_ = true;
  if ((phase_ == Phase::kIdle || phase_ == Phase::kHandshake) && ds_writing_ == DownWrite::kNone) {
    close();
    return;
  }
  keep_alive_ = false;
}

void HttpConnection::close() {
  if (phase_ == Phase::kClosed) return;
  if (request_open_) end_request(false);
  phase_ = Phase::kClosed;
  release_upstream(false);
  lstats_->connections_active.sub();
  timer_.cancel();
  transport_.close();
  worker_.remove_connection(this);
}

// ---- downstream reads and request heads ----

void HttpConnection::read_downstream() {
  if (ds_reading_ || phase_ == Phase::kClosed) return;
  if (last_read_filled_ && in_.empty() && in_.capacity() < kMaxBufferSize) {
    in_.reserve(in_.capacity() * 2);
  }
  if (in_.write_space() == 0) {
    // Bodies are consumed as they are forwarded, so only a head (bounded by
    // the parser's limit) can fill the buffer.
    in_.compact();
    if (in_.write_space() == 0) in_.reserve(in_.capacity() * 2);
  }
  ds_reading_ = true;
  transport_.async_read_some(
      boost::asio::buffer(in_.write_ptr(), in_.write_space()),
      [self = core::Ref<HttpConnection>(this)](const error_code& ec, size_t n) {
        self->on_downstream_read(ec, n);
      });
}

void HttpConnection::on_downstream_read(const error_code& ec, size_t bytes) {
  ds_reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kClosing) {
    if (ec || bytes == 0) {
      close();
      return;
    }
    in_.clear();
    read_downstream();
    return;
  }
  if (ec || bytes == 0) {
    if (phase_ == Phase::kActive) {
      SPDLOG_DEBUG("{}: downstream closed during the request: {}", peer_ip_,
                   ec ? ec.message() : "end of stream");
      flags_ |= accesslog::kDownstreamConnectionTermination;
    }
    close();
    return;
  }
  last_read_filled_ = in_.write_space() == bytes;
  in_.commit(bytes);
  last_activity_ = Clock::now();
  if (phase_ == Phase::kIdle) first_byte_ = last_activity_;
  if (phase_ == Phase::kActive) {
    pump_request_body();
  } else {
    process_head();
  }
}

void HttpConnection::process_head() {
  const http::HeadResult r = parser_.feed(in_.readable(), req_);
  if (r.status == http::HeadResult::kNeedMore) {
    if (phase_ == Phase::kIdle) {
      phase_ = Phase::kHead;
      const auto t = listener_->config->request_headers_timeout;
      head_deadline_ = t.count() > 0 ? last_activity_ + t : kNever;
      arm_timer();
    }
    read_downstream();
    return;
  }
  if (r.status == http::HeadResult::kError) {
    SPDLOG_DEBUG("{}: rejected request: {}", peer_ip_, http::to_string(r.error));
    const int status = http::status_for(r.error);
    method_ = http::Method::kGet;
    version_minor_ = 1;
    begin_request();
    flags_ |= accesslog::kDownstreamProtocolError;
    reject(static_cast<size_t>(r.error));
    local_reply(status,
                fmt::format("{}: {}\n", http::reason_phrase(status), http::to_string(r.error)),
                true);
    return;
  }
  head_size_ = r.consumed;
  phase_ = Phase::kActive;
  on_request();
}

bool HttpConnection::parse_target(std::string_view& authority) {
  const std::string_view t = req_.target;
  path_prefix_slash_ = false;
  if (t[0] == '/') {
    path_ = t;
    return true;
  }
  if (t == "*") {
    path_ = t;
    return method_ == http::Method::kOptions;
  }
  // absolute-form [RFC 9112 3.2.2]: the authority replaces Host.
  const size_t scheme_end = t.find("://");
  if (scheme_end == std::string_view::npos) return false;
  const std::string_view scheme = t.substr(0, scheme_end);
  if (!http::iequals(scheme, "http") && !http::iequals(scheme, "https")) return false;
  const std::string_view rest = t.substr(scheme_end + 3);
  const size_t end = rest.find_first_of("/?#");
  authority = rest.substr(0, end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  if (end == std::string_view::npos) {
    path_ = kSlash;
  } else if (rest[end] == '/') {
    path_ = rest.substr(end);
  } else if (rest[end] == '?') {
    path_ = rest.substr(end);
    path_prefix_slash_ = true;
  } else {
    return false;
  }
  return true;
}

void HttpConnection::on_request() {
  method_ = req_.method;
  version_minor_ = req_.version_minor;
  keep_alive_ = req_.keep_alive() && !drain_requested_;
  refresh_snapshot();
  req_body_ = req_.body;
  req_done_ = req_body_ == http::BodyKind::kNone;
  req_buffered_ = true;
  req_bytes_ = head_size_;
  req_consume_ = 0;
  retried_ = false;
  route_ = nullptr;
  resp_started_ = resp_head_done_ = resp_done_ = interim_sent_ = false;
  upstream_broken_ = dechunk_ = response_waiting_ = false;
  response_deadline_ = kNever;
  arm_timer();
  begin_request();
  req_remove_.clear();
  resp_remove_.clear();
  req_add_.clear();
  resp_add_.clear();

  if (method_ == http::Method::kConnect) {
    reject(kRejectConnect);
    local_reply(405, "CONNECT is not supported\n", false);
    return;
  }
  authority_ = {};
  if (!parse_target(authority_)) {
    flags_ |= accesslog::kDownstreamProtocolError;
    reject(kRejectBadTarget);
    local_reply(400, "Bad Request: bad_request_target\n", true);
    return;
  }
  request_id_generated_ = req_.find("x-request-id") == nullptr;
  if (request_id_generated_) core::format_uuid4(worker_.random(), request_id_);
  if (log_this_) capture_request();
  const std::string_view host = authority_.empty() ? req_.host() : authority_;
  if (tls_ == nullptr && path_.starts_with(tls::kAcmeChallengePrefix)) {
    std::string answer;
    if (tls::find_acme_challenge(path_.substr(tls::kAcmeChallengePrefix.size()), answer)) {
      local_reply(200, answer, false);
      return;
    }
  }
  route_ = listener_->routes.match(host, path_, req_);
  if (route_ == nullptr) {
    flags_ |= accesslog::kNoRouteFound;
    reject(kRejectNoRoute);
    local_reply(404, "no route matched\n", false);
    return;
  }
  if (!listener_->filters.empty() && !run_request_filters()) return;
  acquire_upstream(false);
}

// ---- upstream selection and the request pump ----

void HttpConnection::acquire_upstream(bool fresh) {
  cluster_ = worker_.cluster_for(*snapshot_, route_->cluster);
  upstream::ClusterRuntime& cluster = *cluster_;
  upstream_ = cluster.acquire(upstream_reused_, fresh);
  upstream_->set_owner(this);
  if (upstream_reused_) {
    on_upstream_ready();
    return;
  }
  connecting_ = true;
  pending_counted_ = true;
  upstream_->endpoint().stats->pending_requests.add();
  const auto t = cluster.config().connect_timeout;
  connect_deadline_ = t.count() > 0 ? Clock::now() + t : kNever;
  arm_timer();
  upstream_->connect();
}

void HttpConnection::on_upstream_connected(const error_code& ec) {
  connecting_ = false;
  if (phase_ != Phase::kActive) return;
  if (pending_counted_) {
    pending_counted_ = false;
    upstream_->endpoint().stats->pending_requests.sub();
  }
  if (ec) {
    // A TLS failure says why ("certificate verify failed: hostname mismatch").
    const std::string why = upstream_->tls_failure().empty()
                                ? ec.message()
                                : "TLS handshake failed: " + upstream_->tls_failure();
    SPDLOG_DEBUG("{}: upstream connect to {} failed: {}", peer_ip_, upstream_->endpoint().name(),
                 why);
    static thread_local Clock::time_point last_warning;  // at most one a second per worker
    if (!upstream_->tls_failure().empty() &&
        Clock::now() - last_warning > std::chrono::seconds(1)) {
      last_warning = Clock::now();
      spdlog::warn("upstream {} of cluster {}: {}", upstream_->endpoint().name(),
                   cluster_->config().name, why);
    }
    upstream_->endpoint().stats->connect_failures.add();
    flags_ |= accesslog::kUpstreamConnectionFailure;
    release_upstream(false);
    local_reply(503, fmt::format("upstream connect error: {}\n", why), false);
    return;
  }
  on_upstream_ready();
}

void HttpConnection::on_upstream_ready() {
  const config::Cluster& cluster = cluster_->config();
  ++upstream_->requests;
  endpoint_stats_ = upstream_->endpoint().stats;
  endpoint_stats_->requests_total.add();
  upstream_used_ = true;
  upstream_start_ = Clock::now();
  upstream_host_ = upstream_->endpoint().name();
  http::Limits limits;
  limits.max_head_size = cluster.max_response_headers_size;
  limits.max_headers = cluster.max_response_headers_count;
  resp_parser_ = http::ResponseParser(limits);
  resp_chunked_ = http::ChunkedDecoder(limits);
  resp_.headers.reserve(limits.max_headers);
  resp_head_done_ = resp_started_ = resp_done_ = interim_sent_ = false;
  upstream_broken_ = false;
  req_remaining_ = req_.content_length;
  req_chunked_.reset();
  req_done_ = req_body_ == http::BodyKind::kNone;

  // Start line: forwarded as received when it already is origin-form HTTP/1.1.
  up_out_.clear();
  const std::string_view head = req_.head;
  if (path_.data() == req_.target.data() && version_minor_ == 1) {
    add_span(up_out_, head.data(), req_.start_line_end);
  } else {
    add_span(up_out_, req_.method_name.data(), req_.method_name.size() + 1);  // with its SP
    if (path_prefix_slash_) add_span(up_out_, kSlash);
    add_span(up_out_, path_);
    add_span(up_out_, kSpaceHttp11Crlf);
  }
  add_request_headers(authority_);

  // Body bytes that arrived with the head go in the same write.
  const char* body = in_.readable().data() + head_size_;
  const size_t avail = in_.size() - head_size_;
  size_t take = 0;
  if (req_body_ == http::BodyKind::kContentLength) {
    take = static_cast<size_t>(std::min<uint64_t>(avail, req_remaining_));
    req_remaining_ -= take;
    req_done_ = req_remaining_ == 0;
  } else if (req_body_ == http::BodyKind::kChunked) {
    const auto r = req_chunked_.feed({body, avail});
    if (r.error != http::ParseError::kNone) {
      release_upstream(true);
      local_reply(http::status_for(r.error),
                  fmt::format("Bad Request: {}\n", http::to_string(r.error)), true);
      return;
    }
    take = r.consumed;
    req_done_ = r.done;
  }
  add_span(up_out_, body, take);
  if (!retried_) req_body_bytes_ += take;
  req_buffered_ = req_done_;
  req_bytes_ = head_size_ + take;
  req_consume_ = req_buffered_ ? 0 : req_bytes_;

  // Envoy's default: the proxy answers 100-continue itself, once it knows
  // where the body goes, instead of forwarding the expectation.
  if (req_.expect_continue && !req_done_ && take == 0 && version_minor_ == 1 &&
      ds_writing_ == DownWrite::kNone) {
    down_out_.clear();
    add_span(down_out_, kContinue);
    write_downstream(DownWrite::kContinue);
    if (phase_ != Phase::kActive) return;
  }
  upstream_->read();  // the response pump
  write_upstream();
}

void HttpConnection::add_request_headers(std::string_view authority) {
  const std::string_view head = req_.head;
  const http::HopByHop hop_by_hop(req_);
  bool has_proto = false, has_fwd_host = false;
  std::string_view xfcc_in;  // append_forward: what came in, to add ours to
  for (const http::HeaderField& f : req_.headers) {
    const std::string_view n = f.name;
    bool keep = true;
    if (hop_by_hop(n)) {
      // Chunked framing is forwarded as received, so its field goes too.
      keep = req_body_ == http::BodyKind::kChunked && http::iequals(n, "transfer-encoding");
    } else {
      switch (n.size()) {
        case 4:
          keep = authority.empty() || !http::iequals(n, "host");
          break;
        case 6:
          keep = !req_.expect_continue || !http::iequals(n, "expect");
          break;
        case 16:
          has_fwd_host = has_fwd_host || http::iequals(n, "x-forwarded-host");
          break;
        case 17:
          if (http::iequals(n, "x-forwarded-proto")) {
            // Behind TLS termination the scheme is known: a client's claim is dropped.
            has_proto = tls_ == nullptr;
            keep = tls_ == nullptr;
          }
          break;
        case 23:
          if (http::iequals(n, "x-forwarded-client-cert")) {
            // Only the sidecar that verified a certificate may speak for it.
            keep = false;
            if (listener_->config->forward_client_cert ==
                config::ForwardClientCert::kAppendForward) {
              xfcc_in = f.value;
            }
          }
          break;
        default:
          break;
      }
    }
    if (keep && !req_remove_.empty() && listed(req_remove_, n)) keep = false;
    if (keep) add_span(up_out_, head.data() + f.line_begin, f.line_end - f.line_begin);
  }

  // The lines the proxy adds are built first, then referenced as one span.
  std::string& x = up_extra_;
  x.clear();
  const std::string_view host = authority.empty() ? req_.host() : authority;
  if (!authority.empty()) {
    x.append("host: ").append(authority).append("\r\n");
  } else if (req_.host_index < 0) {
    x.append("host: ").append(upstream_->endpoint().name()).append("\r\n");
  }
  x.append("x-forwarded-for: ").append(peer_ip_).append("\r\n");
  if (!has_proto)
    x.append(tls_ != nullptr ? "x-forwarded-proto: https\r\n" : "x-forwarded-proto: http\r\n");
  const auto fcc = listener_->config->forward_client_cert;
  if (fcc != config::ForwardClientCert::kSanitize && (!xfcc_in.empty() || !xfcc_.empty())) {
    x.append("x-forwarded-client-cert: ").append(xfcc_in);
    if (!xfcc_in.empty() && !xfcc_.empty()) x.append(",");
    x.append(xfcc_).append("\r\n");
  }
  if (!has_fwd_host && !host.empty()) x.append("x-forwarded-host: ").append(host).append("\r\n");
  if (request_id_generated_) {
    x.append("x-request-id: ").append(request_id_, sizeof(request_id_)).append("\r\n");
  }
  x.append(req_add_);
  x.append("\r\n");
  add_span(up_out_, x);
}

void HttpConnection::pump_request_body() {
  const std::string_view avail = in_.readable();
  size_t take = 0;
  if (req_body_ == http::BodyKind::kContentLength) {
    take = static_cast<size_t>(std::min<uint64_t>(avail.size(), req_remaining_));
    req_remaining_ -= take;
    req_done_ = req_remaining_ == 0;
  } else {
    const auto r = req_chunked_.feed(avail);
    if (r.error != http::ParseError::kNone) {
      SPDLOG_DEBUG("{}: bad request body: {}", peer_ip_, http::to_string(r.error));
      flags_ |= accesslog::kDownstreamProtocolError;
      upstream_broken_ = true;
      release_upstream(false);
      local_reply(http::status_for(r.error),
                  fmt::format("Bad Request: {}\n", http::to_string(r.error)), true);
      return;
    }
    take = r.consumed;
    req_done_ = r.done;
  }
  if (take == 0) {
    read_downstream();
    return;
  }
  up_out_.clear();
  add_span(up_out_, avail.data(), take);
  req_consume_ = take;
  req_body_bytes_ += take;
  write_upstream();
}

void HttpConnection::write_upstream() {
  us_writing_ = true;
  error_code ec;
  if (upstream_->transport().write_now(up_out_, ec) || ec) {
    on_upstream_written(ec);
    return;
  }
  upstream_->transport().async_write(
      up_out_, [self = core::Ref<HttpConnection>(this), up = upstream_](const error_code& ec) {
        if (up == self->upstream_) self->on_upstream_written(ec);
      });
}

void HttpConnection::on_upstream_written(const error_code& ec) {
  us_writing_ = false;
  if (phase_ != Phase::kActive) return;
  if (ec) {
    on_upstream_failed(ec, true);
    return;
  }
  last_activity_ = Clock::now();
  if (req_consume_ > 0) {
    in_.consume(req_consume_);
    req_consume_ = 0;
  }
  if (req_done_) {
    on_request_done();
  } else {
    read_downstream();
  }
}

void HttpConnection::on_request_done() {
  const auto t = route_->config->timeout;
  response_deadline_ = t.count() > 0 ? Clock::now() + t : kNever;
  arm_timer();
}

// ---- the response pump ----

void HttpConnection::on_upstream_read(const error_code& ec, size_t bytes) {
  if (phase_ != Phase::kActive) return;
  if (ec || bytes == 0) {
    on_upstream_failed(ec ? ec : boost::asio::error::eof, false);
    return;
  }
  last_activity_ = Clock::now();
  if (ds_writing_ != DownWrite::kNone) {
    response_waiting_ = true;  // behind a 100 Continue still being written
    return;
  }
  process_response();
}

void HttpConnection::process_response() {
  core::Buffer& ub = upstream_->buffer();
  while (!resp_head_done_) {
    const http::HeadResult r = resp_parser_.feed(ub.readable(), resp_);
    if (r.status == http::HeadResult::kNeedMore) {
      upstream_->read();
      return;
    }
    if (r.status == http::HeadResult::kError) {
      SPDLOG_DEBUG("{}: invalid response from {}: {}", peer_ip_, upstream_->endpoint().name(),
                   http::to_string(r.error));
      flags_ |= accesslog::kUpstreamProtocolError;
      release_upstream(false);
      local_reply(502,
                  fmt::format("upstream sent an invalid response: {}\n", http::to_string(r.error)),
                  false);
      return;
    }
    if (resp_.status >= 200) {
      start_response(r.consumed);
      return;
    }
    if (resp_.status == 101) {
      flags_ |= accesslog::kUpstreamProtocolError;
      release_upstream(false);
      local_reply(502, "upstream switched protocols without being asked to\n", false);
      return;
    }
    if (resp_.status != 100 && version_minor_ == 1) {
      forward_interim(r.consumed);
      return;
    }
    // 100 Continue was already answered by the proxy; 1.0 clients get no 1xx.
    ub.consume(r.consumed);
    resp_parser_.reset();
  }
  pump_response_body();
}

void HttpConnection::forward_interim(size_t head_size) {
  interim_sent_ = true;
  down_out_.clear();
  const std::string_view head = resp_.head;
  add_span(down_out_, kHttp11);
  add_span(down_out_, head.data() + 8, resp_.start_line_end - 8);
  const http::HopByHop hop_by_hop(resp_);
  for (const http::HeaderField& f : resp_.headers) {
    if (!hop_by_hop(f.name))
      add_span(down_out_, head.data() + f.line_begin, f.line_end - f.line_begin);
  }
  add_span(down_out_, "\r\n", 2);
  resp_consume_ = head_size;
  write_downstream(DownWrite::kInterim);
}

void HttpConnection::start_response(size_t head_size) {
  resp_head_done_ = true;
  status_ = resp_.status;
  if (log_this_) {
    const auto& names = worker_.access_log()->config().response_headers;
    log_response_headers_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      const http::HeaderField* f = resp_.find(names[i]);
      log_response_headers_[i].assign(f != nullptr ? f->value : std::string_view());
    }
  }
  resp_body_ = http::response_body_kind(resp_, method_);
  resp_remaining_ = resp_.content_length;
  resp_chunked_.reset();
  dechunk_ = resp_body_ == http::BodyKind::kChunked && version_minor_ == 0;
  // Response filters run in reverse order.
  if (!listener_->filters.empty()) {
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->on_response_headers(resp_, *this);
    }
  }
  if (dechunk_ || resp_body_ == http::BodyKind::kUntilClose || !req_done_ || drain_requested_) {
    keep_alive_ = false;
  }

  down_out_.clear();
  const std::string_view head = resp_.head;
  if (resp_.version_minor == 1) {
    add_span(down_out_, head.data(), resp_.start_line_end);
  } else {
    add_span(down_out_, kHttp11);
    add_span(down_out_, head.data() + 8, resp_.start_line_end - 8);
  }
  const http::HopByHop hop_by_hop(resp_);
  const bool keep_te = resp_body_ == http::BodyKind::kChunked && !dechunk_;
  for (const http::HeaderField& f : resp_.headers) {
    if (hop_by_hop(f.name) && !(keep_te && http::iequals(f.name, "transfer-encoding"))) continue;
    if (!resp_remove_.empty() && listed(resp_remove_, f.name)) continue;
    add_span(down_out_, head.data() + f.line_begin, f.line_end - f.line_begin);
  }
  down_extra_.assign(resp_add_);
  if (!keep_alive_) {
    down_extra_.append("connection: close\r\n");
  } else if (version_minor_ == 0) {
    down_extra_.append("connection: keep-alive\r\n");
  }
  down_extra_.append("\r\n");
  add_span(down_out_, down_extra_);

  core::Buffer& ub = upstream_->buffer();
  size_t take = 0;
  if (!take_response_body(ub.readable().substr(head_size), take)) {
    flags_ |= accesslog::kUpstreamProtocolError;
    release_upstream(false);
    local_reply(502, "upstream sent an invalid response body\n", false);
    return;
  }
  resp_consume_ = head_size + take;
  resp_started_ = true;
  write_downstream(DownWrite::kResponse);
}

bool HttpConnection::take_response_body(std::string_view avail, size_t& take) {
  // Counts the body bytes this call adds to the output, whatever the branch.
  struct Count {
    HttpConnection* c;
    size_t before;
    ~Count() { c->resp_body_bytes_ += boost::asio::buffer_size(c->down_out_) - before; }
  } count{this, boost::asio::buffer_size(down_out_)};
  switch (resp_body_) {
    case http::BodyKind::kNone:
      take = 0;
      resp_done_ = true;
      return true;
    case http::BodyKind::kContentLength:
      take = static_cast<size_t>(std::min<uint64_t>(avail.size(), resp_remaining_));
      resp_remaining_ -= take;
      resp_done_ = resp_remaining_ == 0;
      add_span(down_out_, avail.data(), take);
      return true;
    case http::BodyKind::kChunked: {
      chunk_views_.clear();
      const auto r = resp_chunked_.feed(avail, dechunk_ ? &chunk_views_ : nullptr);
      if (r.error != http::ParseError::kNone) return false;
      take = r.consumed;
      resp_done_ = r.done;
      if (dechunk_) {
        for (std::string_view v : chunk_views_) add_span(down_out_, v);
      } else {
        add_span(down_out_, avail.data(), take);
      }
      return true;
    }
    case http::BodyKind::kUntilClose:
      take = avail.size();
      add_span(down_out_, avail.data(), take);
      return true;
  }
  return false;
}

void HttpConnection::pump_response_body() {
  core::Buffer& ub = upstream_->buffer();
  down_out_.clear();
  size_t take = 0;
  if (!take_response_body(ub.readable(), take)) {
    SPDLOG_DEBUG("{}: invalid response body from {}", peer_ip_, upstream_->endpoint().name());
    flags_ |= accesslog::kUpstreamProtocolError;
    close();  // the response has started: all that is left is to cut it short
    return;
  }
  resp_consume_ = take;
  if (down_out_.empty()) {  // only framing (de-chunking), or nothing yet
    ub.consume(take);
    resp_consume_ = 0;
    if (resp_done_) {
      on_response_done();
    } else {
      upstream_->read();
    }
    return;
  }
  write_downstream(DownWrite::kResponse);
}

void HttpConnection::write_downstream(DownWrite what) {
  ds_writing_ = what;
  error_code ec;
  if (transport_.write_now(down_out_, ec) || ec) {
    on_downstream_written(ec);
    return;
  }
  transport_.async_write(down_out_, [self = core::Ref<HttpConnection>(this)](const error_code& ec) {
    self->on_downstream_written(ec);
  });
}

void HttpConnection::on_downstream_written(const error_code& ec) {
  const DownWrite what = ds_writing_;
  ds_writing_ = DownWrite::kNone;
  if (phase_ == Phase::kClosed || phase_ == Phase::kClosing) return;
  if (ec) {
    SPDLOG_DEBUG("{}: downstream write failed: {}", peer_ip_, ec.message());
    flags_ |= accesslog::kDownstreamConnectionTermination;
    close();
    return;
  }
  last_activity_ = Clock::now();
  switch (what) {
    case DownWrite::kNone:
      return;
    case DownWrite::kContinue:
      if (response_waiting_) {
        response_waiting_ = false;
        process_response();
      }
      return;
    case DownWrite::kInterim:
      upstream_->buffer().consume(resp_consume_);
      resp_consume_ = 0;
      resp_parser_.reset();
      process_response();
      return;
    case DownWrite::kLocalReply:
      finish_request();
      return;
    case DownWrite::kResponse: {
      upstream_->buffer().consume(resp_consume_);
      resp_consume_ = 0;
      if (resp_done_) {
        on_response_done();
      } else if (!upstream_->buffer().empty()) {
        pump_response_body();
      } else {
        upstream_->read();
      }
      return;
    }
  }
}

bool HttpConnection::can_retry() const {
  // Only a request on a reused connection that the upstream closed before
  // answering anything: the usual keep-alive race, where the upstream closed
  // an idle connection just as the request was sent. Retrying is safe only
  // for idempotent methods [RFC 9110 9.2.2] whose bytes are all still here.
  return upstream_reused_ && !retried_ && req_buffered_ && req_done_ && !us_writing_ &&
         !resp_head_done_ && !interim_sent_ && upstream_->buffer().empty() && idempotent(method_);
}

void HttpConnection::on_upstream_failed(const error_code& ec, bool from_write) {
  const bool eof = ec == boost::asio::error::eof;
  if (from_write && resp_head_done_) {
    // The upstream stopped reading the request body but is answering (for
    // example an early 413). Let the response finish; close afterwards.
    upstream_broken_ = true;
    keep_alive_ = false;
    return;
  }
  if (resp_head_done_ && resp_body_ == http::BodyKind::kUntilClose && eof) {
    resp_done_ = true;  // this response is delimited by the close
    upstream_broken_ = true;
    on_response_done();
    return;
  }
  if (!resp_started_) {
    if (!resp_head_done_ && can_retry()) {
      SPDLOG_DEBUG("{}: reused upstream connection to {} closed; retrying on a new one", peer_ip_,
                   upstream_->endpoint().name());
      retried_ = true;
      release_upstream(false);
      acquire_upstream(true);
      return;
    }
    flags_ |= accesslog::kUpstreamConnectionTermination;
    upstream_->endpoint().stats->resets.add();
    const bool nothing = !resp_head_done_ && upstream_->buffer().empty() && !interim_sent_;
    std::string body =
        nothing ? (eof ? std::string("upstream closed the connection before responding\n")
                       : fmt::format("upstream reset before response: {}\n", ec.message()))
                : std::string("upstream closed the connection in the middle of the response\n");
    release_upstream(false);
    local_reply(502, body, false);
    return;
  }
  SPDLOG_DEBUG("{}: upstream {} failed mid-response: {}", peer_ip_, upstream_->endpoint().name(),
               ec.message());
  flags_ |= accesslog::kUpstreamConnectionTermination;
  upstream_->endpoint().stats->resets.add();
  close();  // the client sees a truncated response, not a complete wrong one
}

void HttpConnection::on_response_done() {
  const bool reusable = req_done_ && !us_writing_ && !upstream_broken_ && resp_.keep_alive() &&
                        resp_body_ != http::BodyKind::kUntilClose;
  release_upstream(reusable);
  if (!req_done_) keep_alive_ = false;
  finish_request();
}

// ---- ends of a request ----

void HttpConnection::local_reply(int status, std::string_view body, bool close_connection) {
  if (resp_started_ || ds_writing_ != DownWrite::kNone) {
    close();
    return;
  }
  release_upstream(false);
  keep_alive_ = keep_alive_ && !close_connection && phase_ == Phase::kActive && req_done_ &&
                !us_writing_ && !drain_requested_;
  status_ = static_cast<uint16_t>(status);
  if (log_this_) {
    // The headers of the reply the proxy writes, for %RESP(...)%.
    const auto& names = worker_.access_log()->config().response_headers;
    log_response_headers_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      std::string& v = log_response_headers_[i];
      if (names[i] == "content-type") {
        v = "text/plain";
      } else if (names[i] == "content-length") {
        v = std::to_string(body.size());
      } else if (names[i] == "connection" && !keep_alive_) {
        v = "close";
      } else {
        v.clear();
      }
    }
  }
  down_extra_.clear();
  http::append_local_reply(down_extra_, status, body, !keep_alive_, method_ == http::Method::kHead);
  down_out_.clear();
  add_span(down_out_, down_extra_);
  resp_started_ = true;
  write_downstream(DownWrite::kLocalReply);
}

void HttpConnection::finish_request() {
  if (request_open_) end_request(true);
  if (req_done_ && req_buffered_ && phase_ == Phase::kActive) in_.consume(req_bytes_);
  release_upstream(false);
  route_ = nullptr;
  cluster_.reset();
  if (!keep_alive_ || drain_requested_ || phase_ != Phase::kActive) {
    begin_close();
    return;
  }
  phase_ = Phase::kIdle;
  parser_.reset();
  last_activity_ = Clock::now();
  arm_timer();
  if (in_.empty()) {
    read_downstream();
  } else {
    // A pipelined request is already here. Posted, so a long pipeline of
    // requests answered at once does not recurse.
    boost::asio::post(transport_.socket().get_executor(), [self = core::Ref<HttpConnection>(this)] {
      if (self->phase_ == Phase::kIdle) self->process_head();
    });
  }
}

void HttpConnection::release_upstream(bool reusable) {
  connecting_ = false;
  if (!upstream_) return;
  if (pending_counted_) {
    pending_counted_ = false;
    upstream_->endpoint().stats->pending_requests.sub();
  }
  us_writing_ = false;  // a write still in flight is abandoned with the connection
  cluster_->release(std::move(upstream_), reusable);
  upstream_ = nullptr;
}

void HttpConnection::begin_close() {
  if (phase_ == Phase::kClosing || phase_ == Phase::kClosed) return;
  release_upstream(false);
  phase_ = Phase::kClosing;
  error_code ec;
  transport_.shutdown_send(ec);
  if (ec) {
    close();
    return;
  }
  head_deadline_ = Clock::now() + kLingerTimeout;
  arm_timer();
  if (!ds_reading_) in_.clear();
  read_downstream();
}

// ---- timeouts ----

Clock::time_point HttpConnection::deadline() const {
  const config::Listener& l = *listener_->config;
  switch (phase_) {
    case Phase::kIdle:
      return l.idle_timeout.count() > 0 ? last_activity_ + l.idle_timeout : kNever;
    case Phase::kHandshake:
    case Phase::kHead:
    case Phase::kClosing:
      return head_deadline_;
    case Phase::kActive: {
      Clock::time_point d = kNever;
      if (connecting_) d = std::min(d, connect_deadline_);
      if (req_done_ && !resp_done_) d = std::min(d, response_deadline_);
      if (l.stream_idle_timeout.count() > 0) {
        d = std::min(d, last_activity_ + l.stream_idle_timeout);
      }
      return d;
    }
    case Phase::kClosed:
      break;
  }
  return kNever;
}

void HttpConnection::arm_timer() {
  const Clock::time_point d = deadline();
  if (d == kNever || (timer_armed_ && timer_expiry_ <= d)) return;
  timer_armed_ = true;
  timer_expiry_ = d;
  timer_.expires_at(d);  // a wait in progress completes with operation_aborted
  timer_.async_wait(
      [self = core::Ref<HttpConnection>(this)](const error_code& ec) { self->on_timer(ec); });
}

void HttpConnection::on_timer(const error_code& ec) {
  if (ec == boost::asio::error::operation_aborted || phase_ == Phase::kClosed) return;
  timer_armed_ = false;
  const Clock::time_point now = Clock::now();
  if (now >= deadline()) {
    on_timeout(now);
  } else {
    arm_timer();
  }
}

void HttpConnection::on_timeout(Clock::time_point now) {
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
      SPDLOG_DEBUG("{}: request headers timeout", peer_ip_);
      method_ = http::Method::kGet;
      version_minor_ = 1;
      begin_request();
      reject(kRejectHeadersTimeout);
      local_reply(408, "request headers timeout\n", true);
      return;
    case Phase::kActive:
      break;
  }
  if (connecting_ && now >= connect_deadline_) {
    flags_ |= accesslog::kUpstreamConnectionFailure;
    upstream_->endpoint().stats->connect_failures.add();
    upstream_->endpoint().stats->connect_timeouts.add();
    release_upstream(false);
    local_reply(503, "upstream connect error: timed out\n", false);
    return;
  }
  if (req_done_ && now >= response_deadline_) {
    flags_ |= accesslog::kUpstreamRequestTimeout;
    if (upstream_) upstream_->endpoint().stats->request_timeouts.add();
    release_upstream(false);
    if (resp_started_) {
      close();
    } else {
      local_reply(504, "upstream request timeout\n", false);
    }
    return;
  }
  // Nothing moved in either direction for stream_idle_timeout.
  flags_ |= accesslog::kStreamIdleTimeout;
  upstream_broken_ = true;
  release_upstream(false);
  if (resp_started_) {
    close();
  } else {
    local_reply(req_done_ ? 504 : 408, "stream idle timeout\n", true);
  }
}

// ---- stats and the access log ----

void HttpConnection::begin_request() {
  if (request_open_) return;
  request_open_ = true;
  lstats_->requests_active.add();
  req_start_ = first_byte_;
  status_ = 0;
  flags_ = 0;
  req_body_bytes_ = resp_body_bytes_ = 0;
  upstream_used_ = false;
  upstream_host_ = {};
  endpoint_stats_ = nullptr;
  accesslog::Writer* log = worker_.access_log();
  log_this_ =
      log != nullptr && listener_->config->access_log &&
      (log->config().sample >= 1.0 ||
       static_cast<double>(worker_.random().next() >> 11) * 0x1.0p-53 < log->config().sample);
  if (log_this_) {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    start_wall_us_ =
        duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
        duration_cast<microseconds>(Clock::now() - req_start_).count();
    log_method_.clear();
    log_path_.clear();
    log_authority_.clear();
    log_request_headers_.resize(log->config().request_headers.size());
    for (std::string& h : log_request_headers_) h.clear();
    log_response_headers_.resize(log->config().response_headers.size());
    for (std::string& h : log_response_headers_) h.clear();
  }
}

void HttpConnection::reject(size_t reason) {
  if (reason < stats::ListenerStats::kMaxRejectReasons) lstats_->rejected[reason].add();
}

void HttpConnection::capture_request() {
  log_method_.assign(req_.method_name);
  log_path_.assign(req_.target);
  log_authority_.assign(authority_.empty() ? req_.host() : authority_);
  const auto& names = worker_.access_log()->config().request_headers;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string& v = log_request_headers_[i];
    const http::HeaderField* f = req_.find(names[i]);
    v.assign(f != nullptr ? f->value : std::string_view());
    // As forwarded: with what the proxy adds.
    if (names[i] == "x-forwarded-for") {
      if (!v.empty()) v.append(", ");
      v.append(peer_ip_);
    } else if (names[i] == "x-request-id" && request_id_generated_) {
      v.assign(request_id_, sizeof(request_id_));
    }
  }
}

void HttpConnection::end_request(bool complete) {
  request_open_ = false;
  lstats_->requests_active.sub();
  const Clock::time_point now = Clock::now();
  if (route_ != nullptr) {
    stats::RouteStats& rs = *route_->stats[worker_.index()];
    if (complete && status_ != 0) {
      rs.count_status(status_);
    } else {
      rs.resets.add();
    }
    rs.duration.observe(nanos(now - req_start_));
    if (upstream_used_) rs.upstream_duration.observe(nanos(now - upstream_start_));
    rs.request_body_bytes.add(req_body_bytes_);
    rs.response_body_bytes.add(resp_body_bytes_);
  }
  if (endpoint_stats_ != nullptr && status_ >= 500) endpoint_stats_->requests_5xx.add();
  if (log_this_) write_log(now);
}

void HttpConnection::write_log(Clock::time_point now) {
  accesslog::Writer* log = worker_.access_log();
  const config::AccessLog& cfg = log->config();
  if (!cfg.status.empty()) {
    bool wanted = false;
    for (const auto& [lo, hi] : cfg.status) wanted = wanted || (status_ >= lo && status_ <= hi);
    if (!wanted) return;
  }
  accesslog::Entry& e = log_entry_;
  e.start_time_us = start_wall_us_;
  e.duration_us = nanos(now - req_start_) / 1000;
  e.upstream_us = upstream_used_ ? nanos(now - upstream_start_) / 1000 : accesslog::Entry::kNone;
  e.bytes_received = req_body_bytes_;
  e.bytes_sent = resp_body_bytes_;
  e.flags = flags_;
  e.status = status_;
  e.version_minor = version_minor_;
  e.method = log_method_;
  e.path = log_path_;
  e.authority = log_authority_;
  e.upstream_host = upstream_host_;
  e.route = route_ != nullptr ? std::string_view(route_->config->name) : std::string_view();
  e.cluster = route_ != nullptr ? std::string_view(route_->config->cluster) : std::string_view();
  e.listener = listener_->config->name;
  e.remote_address = peer_address_;
  if (tls_ != nullptr) {
    e.tls_version = tls_->version;
    e.peer_subject = tls_->peer_subject;
    e.peer_uri_san = peer_uri_sans_;
    e.requested_server_name = tls_->server_name;
  } else {
    e.tls_version = e.peer_subject = e.peer_uri_san = e.requested_server_name = {};
  }
  e.request_headers.assign(log_request_headers_.begin(), log_request_headers_.end());
  e.response_headers.assign(log_response_headers_.begin(), log_response_headers_.end());
  accesslog::Ring& ring = log->ring(worker_.index());
  char* p = ring.reserve(accesslog::encoded_size(e));
  if (p == nullptr) {
    worker_.stats().access_log_dropped.add();
    log->wake();
    return;
  }
  accesslog::encode(e, p);
  ring.commit();
  worker_.stats().access_log_lines.add();
  if (ring.used() > ring.capacity() / 2) log->wake();
}

// ---- filters ----

bool HttpConnection::run_request_filters() {
  if (filters_listener_ != listener_) {
    // First request, or a new config for this listener: new instances.
    filters_.clear();
    for (const auto& factory : listener_->filters) filters_.push_back(factory->create());
    filters_listener_ = listener_;
  }
  for (auto& filter : filters_) {
    filter_reply_status_ = 0;
    if (filter->on_request_headers(*this) == http::FilterStatus::kContinue) continue;
    if (filter_reply_status_ == 0) {
      // Stopping without answering would leave the client waiting.
      filter_reply_status_ = 500;
      filter_reply_body_ = "a filter stopped the request without answering it\n";
    }
    local_reply(filter_reply_status_, filter_reply_body_, false);
    return false;
  }
  return true;
}

bool HttpConnection::listed(const std::vector<std::string>& names, std::string_view name) {
  for (const std::string& n : names) {
    if (http::iequals(n, name)) return true;
  }
  return false;
}

void HttpConnection::add_request_header(std::string_view name, std::string_view value) {
  req_add_.append(name).append(": ").append(value).append("\r\n");
}

void HttpConnection::remove_request_header(std::string_view name) {
  req_remove_.emplace_back(name);
}

void HttpConnection::add_response_header(std::string_view name, std::string_view value) {
  resp_add_.append(name).append(": ").append(value).append("\r\n");
}

void HttpConnection::remove_response_header(std::string_view name) {
  resp_remove_.emplace_back(name);
}

void HttpConnection::send_local_reply(int status, std::string_view body) {
  // Recorded, and sent once the filter has returned (no reentry into it).
  filter_reply_status_ = status;
  filter_reply_body_.assign(body);
}

}  // namespace sidecar::proxy
