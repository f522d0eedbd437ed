// The client side of the HTTP/2 codec (codec.h): upstream streams
// multiplexed on few connections per cluster and worker (nghttp2).
//
// A cluster with `protocol: h2` (TLS, ALPN "h2") or `h2c` (cleartext, prior
// knowledge) gets a pool per worker: a stream takes the first connection
// with room (fewer open streams than the peer's SETTINGS_MAX_CONCURRENT_
// STREAMS, at most 100) and no GOAWAY, else a new connection opens to the
// next endpoint (round robin). A GOAWAY stops new streams on that
// connection; streams above its last stream id fail as refused (the stream
// may retry them on a fresh connection), the others finish. Idle
// connections close after the cluster's idle_timeout.
//
// Responses are rewritten as HTTP/1.1 heads for the HTTP/1.1 parser (as the
// server side does with requests); trailers are kept as fields. Request
// bodies are sent as DATA as the upstream's windows allow; response DATA is
// acknowledged as the downstream takes it.
//
// Lifetime: connections are reference counted and held by the pool and by
// their streams; a stream is owned by its Stream. Used only on the worker's
// thread.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/ref_counted.h"
#include "http/http1_parser.h"
#include "proxy/codec.h"
#include "proxy/http2_common.h"
#include "upstream/cluster.h"
#include "upstream/upstream_connection.h"

struct nghttp2_session;

namespace sidecar::proxy {

class Http2ClientConnection;
class Worker;

class Http2UpstreamStream final : public UpstreamStream {
 public:
  // `fresh`: not on a connection that already carries streams (a retry).
  // `endpoint`: the one chosen for this attempt (null: the cluster chooses).
  Http2UpstreamStream(Worker& worker, upstream::ClusterRuntime& cluster, UpstreamEvents& events,
                      bool fresh, upstream::Endpoint* endpoint = nullptr);
  ~Http2UpstreamStream() override;

  void start() override;
  void send_request(const OutgoingRequest& req, Spans& body, bool raw_chunked, bool end) override;
  void send_body(Spans& body, bool raw_chunked, bool end) override;
  BodyBatch response_body(Spans& out, bool raw_chunked_ok) override;
  void consume_response_body(size_t bytes) override;
  void await_response_body() override;
  void release(bool reusable) override;
  // Also true when the upstream refused the stream unprocessed (GOAWAY,
  // REFUSED_STREAM): like a stale pooled connection, safe to retry.
  bool reused() const override { return reused_ || refused_; }
  bool refused() const override { return refused_; }
  bool accepts_raw_chunked() const override { return false; }
  void set_request_trailers(const Trailers& trailers) override;
  std::string_view host() const override;
  std::string_view failure() const override;
  stats::EndpointStats* endpoint_stats() const override;
  upstream::Endpoint* endpoint() const override;

 private:
  friend class Http2ClientConnection;

  Worker& worker_;
  upstream::ClusterRuntime& cluster_;
  UpstreamEvents& events_;
  const bool fresh_;
  upstream::Endpoint* endpoint_;
  bool reused_ = false;
  core::Ref<Http2ClientConnection> conn_;
  int32_t id_ = -1;  // the HTTP/2 stream, once the request is submitted
  // Let start on conn_ (ready), its request not submitted yet: counted in
  // the connection's streams() so a burst cannot pass the peer's limit.
  bool admitted_ = false;

  // Events raised inside nghttp2's callbacks, run by the connection after.
  bool ev_ready_ = false, ev_written_ = false, ev_headers_ = false, ev_interim_ = false,
       ev_body_ = false, ev_failed_ = false;
  UpstreamEvents::Failure failure_kind_ = UpstreamEvents::Failure::kReset;
  bool refused_ = false;  // closed unprocessed (GOAWAY, REFUSED_STREAM): safe to retry

  // The request.
  h2::Fields request_fields_;
  h2::SpanSource out_;
  h2::Fields request_trailers_;

  // The response.
  h2::Fields fields_;  // of the head being received
  int status_ = 0;
  bool in_trailers_ = false;
  size_t header_bytes_ = 0;
  std::string head_;  // as HTTP/1.1, parsed into resp_
  http::ResponseHead resp_;
  bool head_done_ = false;
  Framing framing_ = Framing::kNone;
  bool interim_pending_ = false;
  std::string body_;  // received DATA not yet taken
  size_t given_ = 0;
  bool remote_end_ = false;
  bool awaiting_ = false;
  bool closed_ = false;  // nghttp2 closed the stream
  Trailers trailers_;
};

// One HTTP/2 connection to an upstream endpoint.
class Http2ClientConnection final : public core::RefCounted<Http2ClientConnection>,
                                    public upstream::UpstreamCallbacks {
 public:
  // `transport`: a new, unconnected connection of `cluster`.
  Http2ClientConnection(Worker& worker, upstream::ClusterRuntime& cluster,
                        core::Ref<upstream::UpstreamConnection> transport);
  ~Http2ClientConnection();

  upstream::ClusterRuntime& cluster() { return *cluster_; }
  upstream::UpstreamConnection& transport() { return *conn_; }
  // Whether another stream may start here.
  bool has_room() const;
  bool usable() const { return !closed_ && !goaway_; }
  size_t streams() const { return streams_.size() + waiting_.size() + admitted_; }
  std::chrono::steady_clock::time_point idle_since() const { return idle_since_; }

  // Connects (the pool calls this once).
  void start();
  // Runs the stream's pending events from the event loop.
  void raise_event(Http2UpstreamStream& s);
  // A stream joins: ready at once when connected (event), else when the
  // connect finishes.
  void attach(Http2UpstreamStream& s);
  void detach(Http2UpstreamStream& s, bool reset);
  void submit(Http2UpstreamStream& s, const OutgoingRequest& req, bool has_body);
  void resume(Http2UpstreamStream& s);
  void consume(Http2UpstreamStream& s, size_t bytes);
  void close();

  // upstream::UpstreamCallbacks
  void on_upstream_connected(const boost::system::error_code& ec) override;
  void on_upstream_read(const boost::system::error_code& ec, size_t bytes) override;

  // nghttp2 callbacks.
  int on_begin_headers(int32_t id);
  int on_header(int32_t id, std::string_view name, std::string_view value);
  int on_frame_recv(uint8_t type, uint8_t flags, int32_t id);
  int on_data(int32_t id, const uint8_t* data, size_t len);
  int on_stream_close(int32_t id, uint32_t code);
  long read_request(int32_t id, uint8_t* buf, size_t length, uint32_t* flags);

 private:
  Http2UpstreamStream* find(int32_t id);
  void dispatch();
  void schedule();
  void flush();
  void on_written(const boost::system::error_code& ec);
  // Starts the waiting streams the upstream allows, moves the others.
  void settle();
  // Counts `s` as started here until its request is submitted (or it leaves).
  void admit(Http2UpstreamStream& s);
  void unadmit(Http2UpstreamStream& s);
  void fail_all(UpstreamEvents::Failure what, const boost::system::error_code& ec);
  void head_received(Http2UpstreamStream& s, bool end_stream);

  Worker& worker_;
  core::Ref<upstream::ClusterRuntime> cluster_;
  core::Ref<upstream::UpstreamConnection> conn_;
  nghttp2_session* session_ = nullptr;
  boost::system::error_code connect_error_;
  std::unordered_map<int32_t, Http2UpstreamStream*> streams_;
  std::vector<Http2UpstreamStream*> waiting_;  // attached before the connect finished
  size_t admitted_ = 0;                        // ready streams not submitted yet
  std::vector<Http2UpstreamStream*> events_;
  std::string out_;
  Spans out_spans_;
  bool connected_ = false;
  bool settled_ = false;         // the upstream's first SETTINGS arrived
  bool settle_pending_ = false;  // ... inside nghttp2: settle() after it returns
  bool goaway_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool flushing_ = false;
  bool in_dispatch_ = false;
  bool dispatch_posted_ = false;
  std::chrono::steady_clock::time_point idle_since_;
};

// The HTTP/2 connections of one worker, all clusters.
class Http2Pool {
 public:
  // A connection to `endpoint` of `cluster` with room for a stream (a new
  // one when none, or with `fresh`); `reused`: it already carried streams.
  // nullptr when a new connection is needed and the cluster's circuit
  // breaker refuses it.
  core::Ref<Http2ClientConnection> acquire(Worker& worker, upstream::ClusterRuntime& cluster,
                                           upstream::Endpoint& endpoint, bool fresh, bool& reused);
  void remove(Http2ClientConnection& c);
  // Closes connections without streams idle past their cluster's
  // idle_timeout (or all idle ones with `all`).
  void close_idle(std::chrono::steady_clock::time_point now, bool all);

 private:
  std::vector<core::Ref<Http2ClientConnection>> connections_;
};

}  // namespace sidecar::proxy
