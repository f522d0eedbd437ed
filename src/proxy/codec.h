// The seams of the data path (DESIGN.md "Data path", docs/proxy.md):
//
//   downstream connection + codec  <->  Stream  <->  upstream stream + codec
//   (Http1ServerConnection,              (routing,      (Http1UpstreamStream on a
//    Http2ServerConnection)               filters,       pooled connection, or a
//                                         timeouts,      stream of an Http2 client
//                                         access log)    connection)
//
// A codec turns bytes into a stream's events and the stream's answers into
// bytes. The stream never sees framing: it moves heads and body bytes from
// one side to the other and decides what to add, drop or answer itself.
//
// Bodies move by pull, one batch at a time in each direction, which is also
// the back-pressure: the stream asks the source codec for the body bytes it
// has (views into its buffer, not copies), hands them to the other side,
// and releases them (consume) once the other side has written them. Only
// then does the source read more. So a slow reader slows its writer and
// memory stays one buffer per direction.
//
// HTTP/1.1 on both sides keeps today's fast path: head lines are forwarded
// as spans of the read buffer, and a chunked body as its framing when the
// other side is HTTP/1.1 too ("raw chunked"): nothing is copied.
//
// Everything here runs on one worker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include "http/http1_parser.h"

namespace sidecar::stats {
struct EndpointStats;
}
namespace sidecar::upstream {
class Endpoint;
}

namespace sidecar::upstream {
class Endpoint;
}

namespace sidecar::proxy {

class Stream;
// Trailer fields (names in lower case), as HTTP/2 carries them.
using Trailers = std::vector<std::pair<std::string, std::string>>;
using Spans = std::vector<boost::asio::const_buffer>;
using error_code = boost::system::error_code;

// How a message's body is delimited as it is sent.
enum class Framing : uint8_t {
  kNone,     // no body
  kLength,   // a Content-Length field among the forwarded fields gives it
  kUnknown,  // streamed; HTTP/1.1 sends it chunked, HTTP/2 as DATA frames
};

// A message head as a codec writes it: the received fields that are kept,
// and the lines the proxy adds.
struct OutgoingHead {
  const http::MessageHead* received = nullptr;  // null: only `extra`
  // Per received field: nonzero = not sent (hop-by-hop, removed by a filter).
  const std::vector<uint8_t>* skip = nullptr;
  std::string_view extra;  // "name: value\r\n" lines the proxy adds
  Framing framing = Framing::kNone;
};

struct OutgoingRequest : OutgoingHead {
  const http::RequestHead* request = nullptr;
  std::string_view method;     // as received
  std::string_view path;       // origin-form, query included ("" with slash_first: "/")
  bool slash_first = false;    // absolute-form "http://h?q": "/" goes before `path`
  std::string_view authority;  // Host, or :authority
  // The received Host field is among the kept fields (HTTP/1.1 to
  // HTTP/1.1, unchanged): an HTTP/1.1 encoder then writes no other.
  bool host_in_fields = false;
  bool tls = false;  // for :scheme
  // An upgrade the route allows ("websocket"; proxy/upgrade.h): an HTTP/1.1
  // encoder sends `Upgrade` with it and `Connection: upgrade`, and a 101
  // then turns the connection into a tunnel (its body and the response's
  // are the bytes until each side closes). "" for other requests.
  std::string_view upgrade;
};

struct OutgoingResponse : OutgoingHead {
  const http::ResponseHead* response = nullptr;  // null: a local reply
  uint16_t status = 0;
};

// A batch of body bytes offered by a codec.
struct BodyBatch {
  size_t consumed = 0;  // source bytes it covers: release them with consume
  bool end = false;     // the body (with any trailers) is complete
  // The spans are HTTP/1.1 chunked framing as received (only when the
  // caller said raw chunked is fine).
  bool raw_chunked = false;
  // The body is malformed (bad chunked framing): the exchange must end.
  http::ParseError error = http::ParseError::kNone;
  // With `end`: trailer fields that follow the body (an HTTP/2 upstream's),
  // valid until the batch is consumed; null when none.
  const Trailers* trailers = nullptr;
};

// What a stream needs from the connection its request came from.
class DownstreamCodec {
 public:
  // Appends the request body bytes available now to `out` (views valid
  // until consume_request_body), without releasing them. `raw_chunked_ok`:
  // the destination takes HTTP/1.1 chunked framing as received. Call once,
  // then consume before asking again.
  virtual BodyBatch request_body(Stream& s, Spans& out, bool raw_chunked_ok) = 0;
  virtual void consume_request_body(Stream& s, size_t bytes) = 0;
  // Calls s.on_request_body() once more of the body, its end or an error
  // is there.
  virtual void await_request_body(Stream& s) = 0;

  // The response, in order: interim heads (1xx), then the head with the
  // first body bytes, then body batches. Each completes with
  // s.on_downstream_written(ec); the spans stay valid until then.
  virtual void send_interim(Stream& s, const http::ResponseHead& head) = 0;
  virtual void send_response(Stream& s, const OutgoingResponse& head, Spans& body, bool raw_chunked,
                             bool end) = 0;
  virtual void send_body(Stream& s, Spans& body, bool raw_chunked, bool end) = 0;
  // A response the proxy makes itself (text/plain `body`); `close`: the
  // connection cannot be reused. Completes with on_downstream_written.
  virtual void send_local_reply(Stream& s, int status, std::string_view content_type,
                                std::string_view body, std::string_view extra_headers,
                                bool close) = 0;
  // The stream is complete (its response written); the codec releases the
  // request and recycles the stream. The stream returns at once after this.
  virtual void finished(Stream& s) = 0;
  // Ends the stream at once: the request is abandoned, a response that
  // started is cut short (HTTP/1.1 closes the connection, HTTP/2 resets
  // the stream). The stream returns at once after this.
  virtual void reset(Stream& s) = 0;
  // The stream set a deadline (deadline() may be earlier than before).
  virtual void update_deadline(Stream& s) = 0;
  // The protocol the stream came in with, for %PROTOCOL% ("HTTP/1.1").
  virtual std::string_view protocol(const Stream& s) const = 0;
  // Whether a response sent with raw chunked framing can be written as is.
  virtual bool accepts_raw_chunked(const Stream& s) const = 0;
  // Trailer fields to send after the response body; called before the
  // send_* that ends it (copied). HTTP/1.1 drops them (bodies it forwards
  // with their own framing keep theirs).
  virtual void set_response_trailers(Stream&, const Trailers&) {}
  // The upstream accepted the stream's upgrade (a 101; written next with
  // send_response): from now on the request body is every byte the client
  // sends until it ends its side (HTTP/1.1: the connection's bytes after
  // the head, until its end of stream; HTTP/2: the stream's DATA frames),
  // and the connection is not reused afterwards.
  virtual void start_tunnel(Stream&) {}

 protected:
  ~DownstreamCodec() = default;
};

// Events of an upstream stream, for its stream.
class UpstreamEvents {
 public:
  // Connected (or a pooled connection was taken); `ec` on failure, with
  // the reason in UpstreamStream::failure().
  virtual void on_upstream_ready(const error_code& ec) = 0;
  // The last send_* completed.
  virtual void on_upstream_written(const error_code& ec) = 0;
  virtual void on_response_interim(const http::ResponseHead& head) = 0;
  // The final response head; its body comes by response_body().
  virtual void on_response_headers(http::ResponseHead& head, Framing framing) = 0;
  // More response body (after await_response_body).
  virtual void on_response_body() = 0;
  // The upstream failed: reset, closed early, or sent something invalid.
  enum class Failure : uint8_t { kReset, kClosed, kProtocol };
  virtual void on_upstream_failed(Failure what, const error_code& ec) = 0;

 protected:
  ~UpstreamEvents() = default;
};

// One request/response exchange with an upstream endpoint.
class UpstreamStream {
 public:
  virtual ~UpstreamStream() = default;
  // Connects or takes a pooled connection; then on_upstream_ready.
  virtual void start() = 0;
  // The request head and its first body bytes. Completes with
  // on_upstream_written; `body` stays valid until then.
  virtual void send_request(const OutgoingRequest& req, Spans& body, bool raw_chunked,
                            bool end) = 0;
  virtual void send_body(Spans& body, bool raw_chunked, bool end) = 0;
  // Like DownstreamCodec::request_body, for the response.
  virtual BodyBatch response_body(Spans& out, bool raw_chunked_ok) = 0;
  // Releases `bytes` of response body; the first call after a head also
  // releases the head (its views end). After on_response_interim, a call
  // with 0 releases the interim head and the response goes on.
  virtual void consume_response_body(size_t bytes) = 0;
  virtual void await_response_body() = 0;
  // Done: a connection that can carry another request goes back to its
  // pool, else it is closed. No event follows.
  virtual void release(bool reusable) = 0;
  // Whether the connection came from the pool (a closed idle connection is
  // the one failure a request may be retried after).
  virtual bool reused() const = 0;
  // Waiting in the cluster's queue for a connection (max_connections
  // reached): a connect deadline then is an overflow, not a connect failure.
  virtual bool queued() const { return false; }
  // Whether the upstream refused the request unprocessed (HTTP/2
  // REFUSED_STREAM, or a stream beyond a GOAWAY's last id).
  virtual bool refused() const { return false; }
  // Whether send_request takes raw chunked framing (HTTP/1.1).
  virtual bool accepts_raw_chunked() const = 0;
  // Trailer fields to send after the request body; called before the
  // send_* that ends it (copied). HTTP/1.1 drops them.
  virtual void set_request_trailers(const Trailers&) {}
  // The endpoint, "10.0.0.7:8080".
  virtual std::string_view host() const = 0;
  // Why the connection failed ("TLS handshake failed: ..."), or "".
  virtual std::string_view failure() const = 0;
  // The endpoint's stats block of this worker (after start()).
  virtual stats::EndpointStats* endpoint_stats() const = 0;
  // The endpoint (after start()): outlier detection, auto_host_rewrite; null before.
  virtual upstream::Endpoint* endpoint() const = 0;
};

}  // namespace sidecar::proxy
