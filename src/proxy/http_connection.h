// One downstream HTTP/1.1 connection and the requests on it (Envoy's "HTTP
// connection manager" for one connection).
//
// Requests are handled one at a time, in order, so pipelined requests are
// answered in order. For each request two pumps run independently:
//   request:  downstream socket -> read buffer -> upstream socket
//   response: upstream socket -> upstream buffer -> downstream socket
// Each pump has at most one write in flight and reads again only once that
// write has finished, so a body of any size passes through two fixed
// buffers and a slow reader slows its writer instead of filling memory.
//
// Head bytes are never copied: what is forwarded is a list of spans into the
// read buffers (unchanged runs of header lines) plus the few lines the proxy
// adds, written with one writev. A write is first tried at once and only
// waits for the reactor if the socket is full.
//
// All timeouts of a connection share one timer that is re-armed lazily: it
// fires at the earliest deadline that was known when it was armed and then
// looks at the current deadlines, so updating a deadline is a store, not a
// timer operation.
//
// Lifetime: reference counted (see core/ref_counted.h); used only on its
// worker's thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "accesslog/entry.h"
#include "core/buffer.h"
#include "core/ref_counted.h"
#include "http/filter.h"
#include "http/http1_parser.h"
#include "net/transport.h"
#include "proxy/snapshot.h"
#include "upstream/cluster.h"
#include "upstream/upstream_connection.h"

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
  kRejectReasonCount,
};
// The names of the reasons, by index.
std::vector<std::string> reject_reason_names();

class HttpConnection final : public core::RefCounted<HttpConnection>,
                             public upstream::UpstreamCallbacks,
                             public http::FilterCallbacks {
 public:
  using Clock = std::chrono::steady_clock;
  // Like upstream::UpstreamConnection's: 16 KiB, doubling up to 64 KiB
  // while reads (large uploads) keep filling it.
  static constexpr size_t kBufferSize = 16 * 1024;     // bytes
  static constexpr size_t kMaxBufferSize = 64 * 1024;  // bytes

  HttpConnection(Worker& worker, const ListenerRuntime& listener,
                 boost::asio::ip::tcp::socket socket, const boost::asio::ip::tcp::endpoint& peer);
  ~HttpConnection();

  void start();
  // The worker is draining: close now if idle, else after this response.
  void drain();
  config::Direction direction() const { return direction_; }
  const std::string& listener_name() const { return listener_->config->name; }
  // Closes both sides at once; the request in flight, if any, is lost.
  void close();

  // Intrusive list of the worker's connections.
  HttpConnection* prev = nullptr;
  HttpConnection* next = nullptr;

  void on_upstream_connected(const boost::system::error_code& ec) override;
  void on_upstream_read(const boost::system::error_code& ec, size_t bytes) override;

  // http::FilterCallbacks, for the listener's filters.
  const http::RequestHead& request() const override { return req_; }
  void add_request_header(std::string_view name, std::string_view value) override;
  void remove_request_header(std::string_view name) override;
  void add_response_header(std::string_view name, std::string_view value) override;
  void remove_response_header(std::string_view name) override;
  void send_local_reply(int status, std::string_view body) override;

 private:
  enum class Phase : uint8_t {
    kHandshake,  // TLS handshake in progress
    kIdle,       // between requests, nothing buffered
    kHead,       // part of a request head has arrived
    kActive,     // a request is being proxied
    kClosing,    // write side shut down, reading until the client closes
    kClosed,
  };
  // What the one downstream write in flight carries.
  enum class DownWrite : uint8_t { kNone, kContinue, kInterim, kResponse, kLocalReply };

  void on_handshake(const boost::system::error_code& ec);
  void handshake_failed(const boost::system::error_code& ec);

  // Downstream reads and request heads.
  void read_downstream();
  void on_downstream_read(const boost::system::error_code& ec, size_t bytes);
  void process_head();
  void on_request();
  void refresh_snapshot();
  bool parse_target(std::string_view& authority);

  // Upstream selection and the request pump.
  void acquire_upstream(bool fresh);
  void on_upstream_ready();
  void add_request_headers(std::string_view authority);
  void pump_request_body();
  void write_upstream();
  void on_upstream_written(const boost::system::error_code& ec);
  void on_request_done();

  // The response pump.
  void process_response();
  void start_response(size_t head_size);
  void forward_interim(size_t head_size);
  void pump_response_body();
  void write_downstream(DownWrite what);
  void on_downstream_written(const boost::system::error_code& ec);
  bool take_response_body(std::string_view avail, size_t& take);
  void on_upstream_failed(const boost::system::error_code& ec, bool from_write);
  void on_response_done();

  // Ends of a request.
  void local_reply(int status, std::string_view body, bool close_connection);
  void finish_request();
  void release_upstream(bool reusable);
  void begin_close();

  // Timeouts.
  Clock::time_point deadline() const;
  void arm_timer();
  void on_timer(const boost::system::error_code& ec);
  void on_timeout(Clock::time_point now);

  bool can_retry() const;
  // Runs the filters on the request head; false when one answered it.
  bool run_request_filters();
  static bool listed(const std::vector<std::string>& names, std::string_view name);

  // Stats and the access log.
  void begin_request();
  void end_request(bool complete);
  void reject(size_t reason);
  void capture_request();
  void write_log(Clock::time_point now);

  Worker& worker_;
  std::shared_ptr<const Snapshot> snapshot_;  // keeps listener_ alive
  const ListenerRuntime* listener_;
  const config::Direction direction_;
  net::Transport transport_;
  boost::asio::steady_timer timer_;
  core::Buffer in_;
  http::RequestParser parser_;
  http::RequestHead req_;
  std::string peer_ip_;
  std::string peer_address_;           // ip:port, for the access log
  const net::TlsInfo* tls_ = nullptr;  // after the TLS handshake; null on plain TCP
  std::string xfcc_;                   // this client's x-forwarded-client-cert element
  std::string peer_uri_sans_;          // comma separated, for the access log
  stats::ListenerStats* lstats_;

  Phase phase_ = Phase::kIdle;
  bool drain_requested_ = false;  // finish the request in flight, then close
  bool ds_reading_ = false;
  bool last_read_filled_ = false;
  DownWrite ds_writing_ = DownWrite::kNone;
  bool response_waiting_ = false;  // upstream data arrived while a 100 Continue was written
  bool timer_armed_ = false;
  Clock::time_point timer_expiry_;
  Clock::time_point last_activity_;
  Clock::time_point head_deadline_;
  Clock::time_point connect_deadline_;
  Clock::time_point response_deadline_;

  // The request in flight: facts kept after its head bytes are gone.
  const CompiledRoute* route_ = nullptr;
  http::Method method_ = http::Method::kGet;
  uint8_t version_minor_ = 1;
  bool keep_alive_ = true;
  size_t head_size_ = 0;
  std::string_view path_;           // origin-form target to send upstream
  std::string_view authority_;      // from an absolute-form target; replaces Host
  bool path_prefix_slash_ = false;  // absolute-form "http://h?q": send "/" before path_
  http::BodyKind req_body_ = http::BodyKind::kNone;
  uint64_t req_remaining_ = 0;
  http::ChunkedDecoder req_chunked_;
  bool req_done_ = false;      // the whole request was handed to the upstream socket
  bool req_buffered_ = false;  // ... and its bytes are still in in_ (a retry can resend them)
  size_t req_bytes_ = 0;       // bytes of in_ that belong to the request when buffered
  size_t req_consume_ = 0;     // bytes of in_ to drop when the upstream write finishes
  bool us_writing_ = false;
  bool retried_ = false;
  char request_id_[36];  // generated when the request has none
  bool request_id_generated_ = false;

  // Per request, for stats and the access log.
  bool request_open_ = false;
  bool log_this_ = false;
  bool upstream_used_ = false;
  bool pending_counted_ = false;
  uint16_t status_ = 0;  // sent downstream; 0: none
  uint32_t flags_ = 0;   // accesslog::ResponseFlag
  uint64_t req_body_bytes_ = 0;
  uint64_t resp_body_bytes_ = 0;
  Clock::time_point first_byte_;
  Clock::time_point req_start_;
  Clock::time_point upstream_start_;
  int64_t start_wall_us_ = 0;
  std::string_view upstream_host_;
  stats::EndpointStats* endpoint_stats_ = nullptr;  // of the last attempt
  std::string log_method_, log_path_, log_authority_;
  std::vector<std::string> log_request_headers_, log_response_headers_;
  accesslog::Entry log_entry_;

  // Upstream and response state.
  core::Ref<upstream::ClusterRuntime> cluster_;
  core::Ref<upstream::UpstreamConnection> upstream_;
  bool connecting_ = false;
  bool upstream_reused_ = false;
  bool upstream_broken_ = false;  // cannot carry another request
  http::ResponseParser resp_parser_;
  http::ResponseHead resp_;
  bool resp_head_done_ = false;
  bool resp_started_ = false;  // bytes of a final response went downstream
  bool resp_done_ = false;
  bool interim_sent_ = false;  // a 1xx went downstream
  http::BodyKind resp_body_ = http::BodyKind::kNone;
  uint64_t resp_remaining_ = 0;
  http::ChunkedDecoder resp_chunked_;
  bool dechunk_ = false;     // HTTP/1.0 client: strip chunked framing
  size_t resp_consume_ = 0;  // upstream buffer bytes to drop when the downstream write finishes

  // Output spans and the lines the proxy adds (reused; no allocation per request).
  std::vector<boost::asio::const_buffer> up_out_;
  std::vector<boost::asio::const_buffer> down_out_;
  std::string up_extra_;
  std::string down_extra_;
  std::vector<std::string_view> chunk_views_;

  // Filters of this connection's listener, and the edits they asked for
  // (applied when the heads are written; reset per request).
  std::vector<std::unique_ptr<http::HttpFilter>> filters_;
  const ListenerRuntime* filters_listener_ = nullptr;
  std::vector<std::string> req_remove_, resp_remove_;
  std::string req_add_, resp_add_;
  int filter_reply_status_ = 0;
  std::string filter_reply_body_;
};

}  // namespace sidecar::proxy
