// One request/response exchange (Envoy's "active stream" with its router):
// what the proxy decides about a request, whatever protocol brought it and
// whatever protocol carries it on. The codecs (codec.h) feed it and write
// for it; it routes, runs the filters, picks and drives the upstream, keeps
// the timeouts of the exchange, answers errors, and accounts for the
// request (stats and the access log).
//
// A stream belongs to its downstream connection, which creates it for a
// request head and destroys (or recycles) it after stream_finished. Per-
// request state lives here, not in the connection, so an idle connection
// holds none of it; streams are recycled by the worker (Worker::acquire_stream).
//
// Used only on its worker's thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accesslog/entry.h"
#include "core/ref_counted.h"
#include "http/filter.h"
#include "net/transport.h"
#include "proxy/codec.h"
#include "proxy/retry.h"
#include "proxy/snapshot.h"
#include "tracing/stream_trace.h"
#include "upstream/cluster.h"

namespace sidecar::proxy {

class Worker;

// Reasons a request is rejected by the proxy itself, for
// sidecar_http_rejected_requests_total{reason}: every http::ParseError (by
// its value), then these.
enum RejectReason : size_t {
  kRejectHeadersTimeout = static_cast<size_t>(http::ParseError::kTrailersTooLarge) + 1,
  kRejectNoRoute,
  kRejectConnect,
  kRejectBadTarget,
  kRejectUpgradeFailed,  // an upgrade the route does not allow (Envoy's upgrade_failed)
  kRejectReasonCount,
};
// The names of the reasons, by index.
std::vector<std::string> reject_reason_names();

// What a downstream connection knows that its streams use.
struct DownstreamInfo {
  // From the client certificate, computed once per TLS connection.
  struct ClientCert {
    std::string xfcc;           // the client's x-forwarded-client-cert element
    std::string peer_uri_sans;  // comma separated, for the access log
  };

  Worker* worker = nullptr;
  stats::ListenerStats* listener_stats = nullptr;
  const net::TlsInfo* tls = nullptr;  // after the TLS handshake; null on plain TCP
  // The client, IPv4-mapped IPv6 addresses as IPv4. Kept binary and
  // formatted on demand (per request, by the stream) so that an idle
  // connection holds 28 bytes instead of two strings (issue 17).
  boost::asio::ip::tcp::endpoint peer;
  std::shared_ptr<const ClientCert> client_cert;  // null without a client certificate

  std::string peer_ip() const;       // "10.0.0.1", "::1"
  std::string peer_address() const;  // "10.0.0.1:5432", "[::1]:5432"
  // Both into existing strings: no allocation once they have the capacity
  // and, for IPv4, no printf (glibc's inet_ntop formats with sprintf): the
  // stream does this for every request.
  void format_peer(std::string& ip, std::string& address) const;
  std::string_view xfcc() const { return client_cert ? client_cert->xfcc : std::string_view(); }
  std::string_view peer_uri_sans() const {
    return client_cert ? client_cert->peer_uri_sans : std::string_view();
  }
};

class Stream final : public http::FilterCallbacks, public UpstreamEvents {
 public:
  using Clock = std::chrono::steady_clock;

  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // ---- from the downstream codec ----

  // A request head arrived (`request` stays valid until the stream ends).
  // `started` is when its first byte arrived; `body`: the request has one.
  void start(DownstreamCodec& codec, const DownstreamInfo& info,
             std::shared_ptr<const Snapshot> snapshot, const ListenerRuntime& listener,
             http::RequestHead& request, Clock::time_point started);
  // A request the codec rejected before it became a stream (bad head,
  // headers timeout): accounted and answered like any other.
  void start_rejected(DownstreamCodec& codec, const DownstreamInfo& info,
                      std::shared_ptr<const Snapshot> snapshot, const ListenerRuntime& listener,
                      Clock::time_point started, http::Method method, size_t reason, int status,
                      std::string_view body, uint32_t flags);
  // More request body is available (after await_request_body).
  void on_request_body();
  // The request body is malformed (a chunked framing error): `status`.
  void on_request_invalid(int status, std::string_view why);
  // The downstream connection closed or failed; the stream ends now.
  void on_downstream_reset(const error_code& ec);
  // A send_* of the codec completed.
  void on_downstream_written(const error_code& ec);
  // The connection is draining: the response says "Connection: close".
  bool draining() const;

  // The earliest time this stream has to act on (a timeout), or max().
  Clock::time_point deadline() const;
  void on_timeout(Clock::time_point now);

  bool active() const { return active_; }
  uint8_t version_minor() const { return version_minor_; }
  http::Method method() const { return method_; }
  // The request body was read whole (the connection can carry another).
  bool request_complete() const { return req_done_; }
  // A response (head or local reply) has started downstream.
  bool response_started() const { return resp_started_; }

  // ---- http::FilterCallbacks ----
  const http::RequestHead& request() const override { return *req_; }
  std::string_view path() const override;
  std::string_view authority() const override;
  std::string_view peer_ip() const override { return peer_ip_; }
  std::string_view peer_address() const override { return peer_address_; }
  std::string_view upstream_host() const override { return upstream_host_; }
  std::chrono::system_clock::time_point start_time() const override;
  const net::TlsInfo* tls() const override { return info_->tls; }
  std::string_view listener_name() const override { return listener_->config->name; }
  std::string_view route_name() const override;
  uint16_t local_port() const override;
  const void* route_config(std::string_view name) const override;
  void add_request_header(std::string_view name, std::string_view value) override;
  void remove_request_header(std::string_view name) override;
  void set_request_path(std::string_view path) override;
  void set_request_streamed() override { req_streamed_ = true; }
  void buffer_request_body(size_t max_bytes) override;
  void add_response_header(std::string_view name, std::string_view value) override;
  void remove_response_header(std::string_view name) override;
  void set_response_streamed() override { resp_streamed_ = true; }
  void send_local_reply(int status, std::string_view body) override;
  void send_response(http::LocalResponse response) override;
  void set_response_flag(uint32_t flag) override { flags_ |= flag; }
  void set_response_detail(std::string_view detail) override { detail_.assign(detail); }
  void set_metadata(std::string_view key, std::string_view value) override;
  std::optional<std::string_view> metadata(std::string_view key) const override;
  http::AsyncClient& http_client() override;
  std::string_view route_cluster() override;
  http::ClientRequest upstream_request() override;
  void continue_request() override;
  boost::asio::io_context& io() override;

  // ---- UpstreamEvents ----
  void on_upstream_ready(const error_code& ec) override;
  void on_upstream_written(const error_code& ec) override;
  void on_response_interim(const http::ResponseHead& head) override;
  void on_response_headers(http::ResponseHead& head, Framing framing) override;
  void on_response_body() override;
  void on_upstream_failed(Failure what, const error_code& ec) override;

 private:
  // The events of a hedged attempt (a second one started beside an attempt
  // that hit its per_try_timeout): it sends the held request itself and
  // reports only its response head or its end; once it wins (or the first
  // attempt fails) it is promoted and its events go to the stream as the
  // first attempt's do.
  class HedgeEvents final : public UpstreamEvents {
   public:
    explicit HedgeEvents(Stream& s) : s_(s) {}
    void on_upstream_ready(const error_code& ec) override;
    void on_upstream_written(const error_code& ec) override;
    void on_response_interim(const http::ResponseHead& head) override;
    void on_response_headers(http::ResponseHead& head, Framing framing) override;
    void on_response_body() override;
    void on_upstream_failed(Failure what, const error_code& ec) override;
    bool promoted = false;
    bool writing = false;    // its request write is in flight
    bool connected = false;  // on_upstream_ready came

   private:
    Stream& s_;
  };

  // What the one downstream write in flight carries.
  enum class DownWrite : uint8_t { kNone, kContinue, kInterim, kResponse, kLocalReply };

  bool parse_target();
  void route_and_forward();
  // After the request filters: the route's answer (redirect,
  // direct_response), or its path rewrite and the upstream (route_action.h).
  void forward();
  // Runs the request filters from `from`; false when one answered or paused.
  bool run_request_filters(size_t from);
  // The response hooks for a local reply (its status and body length).
  void filter_local_reply(int status, std::string_view content_type, size_t body_size);
  void filters_request_data(Spans& data, bool end);
  // buffer_request_body(): reads more of the body into prebuffer_, and
  // hands it to the paused filter once whole or over the limit.
  void pull_buffered_body();
  void start_buffering(size_t filter);
  // After body hooks: a filter answered (send_local_reply); true when the
  // exchange ended with that reply (or a reset, after the response started).
  bool data_hook_answered();
  void filters_response_data(Spans& data, bool end);
  // Whether a filter took the response trailers into the body.
  bool filters_response_trailers(const Trailers& trailers);
  void end_filters();
  void acquire_upstream(bool fresh);
  // stream_balancing.cc: the cluster of the route (weighted_clusters) and
  // the hash key (hash_policy), once per request; the endpoint of an attempt
  // (null: answered 503 UO or UH).
  void select_cluster();
  upstream::Endpoint* choose_endpoint();
  // The endpoint for a hedge, another than the first attempt's when there is
  // one; null (no hedge) when none or a circuit breaker is full.
  upstream::Endpoint* choose_hedge_endpoint();
  std::string_view cluster_name() const;
  // The request head for the attempt on `up`, into `o` and `extra`.
  void build_request_head(const UpstreamStream& up, OutgoingRequest& o, std::string& extra);
  // The next request body batch from the codec into up_body_ (raw chunked
  // when the upstream takes it and nothing looks at the bytes).
  BodyBatch read_request_body();
  // A batch on its way upstream: its framing error answered, the
  // request-data hooks run, its trailers handed on; false when the stream
  // was answered instead.
  bool pass_request_body(const BodyBatch& b);
  // Keeps request body bytes for a retry while they fit kReplayLimit.
  void hold_for_replay(const Spans& body, bool end);
  // Copies the request head out of the codec's read buffer, which a streamed
  // body reuses, and makes req_ point to the copy.
  void keep_request_head();
  // A retry policy decision on the failed attempt; true when a retry (or
  // the hedge) took over, false when the caller answers.
  bool retry_after_failure(AttemptFailure failure);
  // The same for a response head, before it goes downstream.
  bool retry_after_response(const http::ResponseHead& head);
  // Whether another attempt may carry this request now, budget aside: the
  // response has not started, the whole request is held, and the method is
  // idempotent unless the request provably went unprocessed.
  bool retry_allowed(bool unprocessed) const;
  void schedule_retry(std::chrono::milliseconds delay);
  void start_hedge();
  void send_hedge_request();
  void drop_hedge();
  // The hedge replaces the first attempt, which is released.
  void promote_hedge();
  void count_response(int status);
  // The response head goes downstream (after the filters).
  void forward_response_head(http::ResponseHead& head, Framing framing);
  // The upstream stream for an attempt to `endpoint`: HTTP/1.1 or HTTP/2 by
  // the cluster's protocol (auto: by what the endpoint chose by ALPN).
  std::unique_ptr<UpstreamStream> new_upstream(UpstreamEvents& events, bool fresh,
                                               upstream::Endpoint& endpoint);
  // Whether a Content-Length response goes chunked so trailers can follow.
  bool chunk_for_trailers() const;
  // Copies the request to the route's mirror clusters (fire and forget).
  void mirror_request();
  // The request's head as a ClientRequest (method, path(), authority(),
  // end-to-end fields minus removed ones), plus the "name: value\r\n"
  // lines of `extra`; no body (mirror_request, upstream_request).
  void copy_request_head(http::ClientRequest& c, std::string_view extra) const;
  void on_request_sent();
  // The next response body batch from the upstream into down_body_, through
  // the response-data hooks; false when the stream was answered or reset
  // instead (an invalid body, a filter's reply).
  bool next_response_body(BodyBatch& b);
  // A last batch's trailers go downstream (their grpc-status to the log).
  void pass_response_trailers(const BodyBatch& b);
  void pump_response();
  // The proxy's own answer (text/plain; for a gRPC client a trailers-only
  // gRPC error), unless a response hook answers in its place.
  void local_reply(int status, std::string_view body, bool close);
  // A filter's answer (send_response, or a response hook's).
  void send_filter_response();
  // What both answers share: false when the response already started (the
  // stream is reset instead); else the upstream is released.
  bool begin_local_reply(int status);
  // Writes the answer: %RESP(...)% values for the access log, the stream's
  // state, then the codec; `extra_lines` are "name: value\r\n" lines.
  void write_local_reply(int status, std::string_view content_type, std::string_view body,
                         std::string_view extra_lines, bool closing);
  void finish();
  // Ends the stream now (accounting first); the codec cuts the response.
  void abort_stream();
  void release_upstream(bool reusable);
  bool can_retry() const;
  void upstream_connect_failed(const error_code& ec);
  void response_invalid();

  // Upgrades (stream_upgrade.cc, proxy/upgrade.h).
  // After routing: whether the request may go on (false: answered 403).
  bool check_upgrade();
  // The upstream's 101 for the upgrade: the exchange becomes a tunnel.
  void begin_tunnel();
  // After the 101 went to the codec: the client's bytes start to flow.
  void pump_tunnel_request();
  // The idle timeout of this stream: the route's, else the listener's.
  config::Duration idle_timeout() const;

  // Stats and the access log.
  void begin_request();
  void end_request(bool complete);
  void reject(size_t reason);
  void capture_request();
  void write_log(Clock::time_point now);
  void begin_trace();
  void publish_tap(Clock::time_point now);  // the dashboard's tap (tracing/tap.h)
  void end_trace();
  static bool listed(const std::vector<std::string>& names, std::string_view name);

  DownstreamCodec* codec_ = nullptr;
  const DownstreamInfo* info_ = nullptr;
  std::string peer_ip_;                       // info_->peer_ip(), formatted when the stream starts
  std::string peer_address_;                  // info_->peer_address()
  std::shared_ptr<const Snapshot> snapshot_;  // keeps listener_ alive
  const ListenerRuntime* listener_ = nullptr;
  http::RequestHead* req_ = nullptr;
  bool active_ = false;

  // The request.
  const CompiledRoute* route_ = nullptr;
  http::Method method_ = http::Method::kGet;
  uint8_t version_minor_ = 1;
  std::string_view path_;       // origin-form target to send upstream
  std::string_view authority_;  // from an absolute-form target; replaces Host
  bool path_slash_first_ = false;
  std::string route_path_;  // "/?q" for routing an absolute-form "http://h?q"
  bool req_done_ = false;   // the whole request body was handed to the upstream
  bool req_sent_ = false;   // ... and written
  bool req_held_ = false;   // ... and its bytes were never released (a retry can resend them)
  bool retried_ = false;    // the keep-alive race retry was used
  // Retries under the route's retry_policy (retry.h; docs/resilience.md).
  static constexpr size_t kReplayLimit =
      1024 * 1024;               // bytes (Envoy's per_connection_buffer_limit)
  uint8_t attempts_ = 0;         // attempts started: the first, retries and hedges
  uint32_t policy_retries_ = 0;  // of which retries and hedges
  Clock::time_point retry_at_ = Clock::time_point::max();      // a retry's back-off ends
  Clock::time_point try_deadline_ = Clock::time_point::max();  // the attempt's per_try_timeout
  std::optional<std::chrono::seconds> retry_after_;            // from the last retried response
  std::string replay_;           // a streamed request body kept for retries
  std::string kept_head_bytes_;  // ... and its head (keep_request_head)
  http::RequestHead kept_head_;
  bool replay_ok_ = false;                  // ... and it still fits kReplayLimit
  const Trailers* req_trailers_ = nullptr;  // to send again with a retry
  std::unique_ptr<UpstreamStream> hedge_;
  HedgeEvents hedge_events_{*this};
  OutgoingRequest hedge_req_;
  std::string hedge_extra_;
  Spans hedge_body_;
  bool grpc_ = false;         // a gRPC call: local replies are gRPC errors
  int8_t grpc_status_ = -1;   // ... its grpc-status as answered (-1: none yet)
  std::string_view upgrade_;  // the upgrade the route allows ("websocket"), else ""
  bool tunnel_ = false;       // ... and the upstream switched: bytes both ways until close
  bool expect_continue_ = false;
  bool continue_sent_ = false;  // the proxy answered this request's Expect itself
  char request_id_[36];         // generated when the request has none
  bool request_id_generated_ = false;
  size_t req_pending_ = 0;  // request body bytes sent upstream and not yet released
  bool req_raw_chunked_ = false;
  Spans held_body_;  // the whole body, while req_held_
  bool us_writing_ = false;

  // Upstream and response state.
  core::Ref<upstream::ClusterRuntime> cluster_;
  int cluster_index_ = -1;                       // chosen by select_cluster(); -1: not yet
  std::optional<uint64_t> lb_hash_;              // the request's hash_policy key
  std::vector<const upstream::Host*> lb_avoid_;  // endpoints a retry should avoid
  upstream::Attempt attempt_;                    // the upstream attempt in flight
  upstream::Attempt hedge_attempt_;              // ... and the hedge's
  upstream::RetryToken retry_token_;             // a retry counted in the breaker
  std::unique_ptr<UpstreamStream> upstream_;
  // The last attempt's Http1UpstreamStream, released, for the next attempt
  // or request (recycled: its arrays keep their capacity).
  std::unique_ptr<UpstreamStream> spare_h1_;
  bool connecting_ = false;
  bool alpn_switched_ = false;  // this attempt changed codec once (protocol: auto)
  http::ResponseHead* resp_ = nullptr;
  Framing resp_framing_ = Framing::kNone;
  bool resp_head_done_ = false;
  bool resp_started_ = false;  // bytes of a final response went downstream
  bool resp_done_ = false;     // ... all of them were handed to the codec
  bool interim_sent_ = false;  // a 1xx went downstream
  size_t resp_pending_ = 0;    // response bytes handed downstream, not yet released
  DownWrite ds_writing_ = DownWrite::kNone;
  bool response_waiting_ = false;  // the upstream answered while a 100 Continue was written
  http::ResponseHead* pending_head_ = nullptr;           // ... with this head
  const http::ResponseHead* pending_interim_ = nullptr;  // ... or this 1xx
  Framing pending_framing_ = Framing::kNone;
  Clock::time_point connect_deadline_ = Clock::time_point::max();
  Clock::time_point response_deadline_ = Clock::time_point::max();
  // Stamped with core::CoarseClock (no clock_gettime per event); only the
  // stream idle timeout (seconds) is computed from it. That clock can lag
  // a few milliseconds behind on a busy or virtual machine, so the route's
  // timeouts (response, connect, per try, back-off) use steady_clock.
  Clock::time_point last_activity_;

  // Per request, for stats and the access log.
  bool log_this_ = false;
  bool upstream_used_ = false;
  bool pending_counted_ = false;
  uint16_t status_ = 0;  // sent downstream; 0: none
  uint32_t flags_ = 0;   // accesslog::ResponseFlag
  std::string detail_;   // %RESPONSE_CODE_DETAILS%
  std::vector<std::pair<std::string, std::string>> metadata_;
  uint64_t req_body_bytes_ = 0;
  uint64_t resp_body_bytes_ = 0;
  Clock::time_point req_start_;
  Clock::time_point upstream_start_;
  int64_t start_wall_us_ = 0;
  std::string upstream_host_;
  stats::EndpointStats* endpoint_stats_ = nullptr;  // of the last attempt
  std::string log_method_, log_path_, log_authority_;
  std::vector<std::string> log_request_headers_, log_response_headers_;
  accesslog::Entry log_entry_;
  tracing::StreamTrace trace_;  // spans of this request (docs/tracing.md)

  // Heads as sent, and the batches in flight (reused by the next request).
  std::vector<uint8_t> req_skip_, resp_skip_;
  std::string up_extra_, down_extra_;
  Spans up_body_, down_body_;
  OutgoingRequest out_req_;
  OutgoingResponse out_resp_;

  // Filters of the listener, and the edits they asked for (applied when
  // the heads are written; reset per request).
  std::vector<std::unique_ptr<http::HttpFilter>> filters_;
  const ListenerRuntime* filters_listener_ = nullptr;
  std::vector<std::string> req_remove_, resp_remove_;
  std::string req_add_, resp_add_;
  int filter_reply_status_ = 0;
  std::string filter_reply_body_;
  std::optional<http::LocalResponse> filter_response_;
  size_t filters_paused_at_ = SIZE_MAX;  // the filter that stopped and has not continued
  bool in_filters_ = false;              // a request (or response headers) hook is running
  bool continue_pending_ = false;        // ... and called continue_request()
  bool wants_request_data_ = false, wants_response_data_ = false;
  bool resp_streamed_ = false;  // a filter changes the response body's length
  bool req_streamed_ = false;   // ... the request body's length
  // buffer_request_body(): the limit, whether the body is being read into
  // prebuffer_ for the paused filter, and whether prebuffer_ holds bytes
  // not forwarded yet (the first batch sent upstream).
  size_t buffer_limit_ = 0;
  bool buffer_requested_ = false, buffering_ = false, prebuffered_ = false;
  bool body_was_buffered_ = false;  // this exchange's body came through prebuffer_
  std::string prebuffer_;
  Trailers prebuffer_trailers_;
  std::string path_override_;
  std::string host_rewrite_;  // the route's host_rewrite / auto_host_rewrite authority
  bool path_overridden_ = false;
};

}  // namespace sidecar::proxy
