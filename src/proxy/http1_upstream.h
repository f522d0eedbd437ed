// An upstream stream over HTTP/1.1 (codec.h): one request/response on a
// connection from the cluster's per-worker keep-alive pool (or a new one).
//
// Requests are written as spans: an HTTP/1.1 request's head lines and its
// body are forwarded from the downstream read buffer as they are (chunked
// framing included), other heads are formatted once. Responses are parsed
// with the strict HTTP/1.1 parser in the connection's read buffer, and
// offered to the stream as views of it, decoded or as raw chunked framing.
//
// Lifetime: owned by its stream; release() (or the destructor) hands the
// connection back to the pool or closes it. Used only on its worker's thread.
#pragma once

#include <string>

#include "core/ref_counted.h"
#include "http/http1_parser.h"
#include "http/spans.h"
#include "proxy/codec.h"
#include "upstream/cluster.h"
#include "upstream/upstream_connection.h"

namespace sidecar::proxy {

class Http1UpstreamStream final : public UpstreamStream,
                                  public upstream::UpstreamCallbacks,
                                  public upstream::ConnectionWaiter {
 public:
  // `fresh`: never a pooled connection (a retry after a pooled one failed).
  // `endpoint`: the one chosen for this attempt (null: the cluster chooses).
  Http1UpstreamStream(upstream::ClusterRuntime& cluster, UpstreamEvents& events, bool fresh,
                      upstream::Endpoint* endpoint = nullptr);
  ~Http1UpstreamStream() override;

  // Makes a released stream (release() was called) new for another
  // attempt, as the constructor would, keeping the capacity of its arrays
  // and strings: a stream recycled this way allocates nothing per request
  // (issue 17; a new one took about four allocations per request).
  void recycle(upstream::ClusterRuntime& cluster, UpstreamEvents& events, bool fresh,
               upstream::Endpoint* endpoint);
  // Leaves the connection (release(false) unless released already) and
  // the cluster's queue of waiters, as the destructor does.
  void detach();

  void start() override;
  void send_request(const OutgoingRequest& req, Spans& body, bool raw_chunked, bool end) override;
  void send_body(Spans& body, bool raw_chunked, bool end) override;
  BodyBatch response_body(Spans& out, bool raw_chunked_ok) override;
  void consume_response_body(size_t bytes) override;
  void await_response_body() override;
  void release(bool reusable) override;
  bool reused() const override { return reused_; }
  bool queued() const override { return queued_; }
  bool accepts_raw_chunked() const override { return true; }
  void set_request_trailers(const Trailers& trailers) override;
  std::string_view host() const override;
  std::string_view failure() const override;

  stats::EndpointStats* endpoint_stats() const override;
  upstream::Endpoint* endpoint() const override;

  // upstream::UpstreamCallbacks
  void on_upstream_connected(const boost::system::error_code& ec) override;
  void on_upstream_read(const boost::system::error_code& ec, size_t bytes) override;

 private:
  void write(bool end);
  void acquire(bool woken);
  void on_connection_available() override;
  void on_written(const boost::system::error_code& ec);
  void add_body(Spans& body, bool raw_chunked, bool end);
  void process_response();

  upstream::ClusterRuntime* cluster_;
  UpstreamEvents* events_;
  bool fresh_;
  upstream::Endpoint* endpoint_;
  core::Ref<upstream::UpstreamConnection> conn_;
  bool reused_ = false;
  bool pending_counted_ = false;  // in the endpoint's pending_requests gauge
  bool queued_ = false;           // waiting for a connection (ConnectionWaiter)
  bool writing_ = false;
  bool request_done_ = false;    // the end of the request was handed to the socket
  bool chunk_encode_ = false;    // the request body gets chunked framing here
  bool upgrade_ = false;         // the request asked for an upgrade (OutgoingRequest::upgrade)
  bool tunnel_ = false;          // ... and the upstream switched: bytes both ways until close
  bool shutdown_after_ = false;  // the write in flight ends the tunnel's request side
  http::Method method_ = http::Method::kGet;

  // Output of the write in flight (spans into the downstream buffer and the
  // strings below; reserved up front so that they never move while used).
  Spans out_;
  std::string head_;           // a formatted head (when it did not come as HTTP/1.1 lines)
  std::string host_line_;      // "host: ...", when the request had no Host
  http::ChunkEncoder chunks_;  // framing of chunk_encode_

  // The response.
  http::ResponseParser parser_;
  http::ResponseHead resp_;
  size_t head_size_ = 0;       // bytes of the buffer the head (final or 1xx) takes
  bool head_done_ = false;     // a final head was parsed
  bool head_pending_ = false;  // ... and is still in the buffer
  bool interim_ = false;       // a 1xx waits for consume_response_body(0)
  bool awaiting_ = false;      // the stream waits for more body
  bool eof_ = false;           // the upstream closed (ends an until-close body)
  bool done_ = false;          // the whole response was offered
  bool broken_ = false;        // cannot carry another request
  http::BodyKind body_ = http::BodyKind::kNone;
  uint64_t remaining_ = 0;
  http::ChunkedDecoder chunked_;
  std::vector<std::string_view> chunk_views_;
  Trailers response_trailers_;  // of a chunked response passed on decoded (to HTTP/2)
};

}  // namespace sidecar::proxy
