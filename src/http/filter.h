// HTTP filters: per-listener processing steps between the codec and the
// upstream (DESIGN.md "Data path", docs/filters.md).
//
// A filter has two parts. Its factory is built once per config snapshot from
// the filter's parsed config: immutable, shared by all workers. Its instance
// belongs to one stream on one worker at a time; the stream calls
// on_stream_end() when the exchange is over, and may reuse the instance for
// the stream's next exchange (so per-request state is reset there).
//
// Order: request hooks run in config order, response hooks in reverse.
// The route is chosen before the filters run (callbacks.route_name(), and
// route_config() for the route's `typed_per_filter_config`).
//
// Request headers: a filter returns
//   - kContinue: the next filter runs;
//   - kStopIteration after send_local_reply() or send_response(): the
//     request is answered; nothing goes upstream;
//   - kStopIteration without an answer: the filter is waiting for something
//     (Redis, an authorization service, a cache fill) and later calls
//     continue_request() (the chain goes on after it) or answers. Until then
//     the request waits; the stream's idle timeout still applies, and
//     on_stream_end() tells a filter that its stream went away, after which
//     it must not use its callbacks.
// Heads are not copied: filters read the parsed request and ask for fields
// to be added, replaced or removed; the edits apply when the head is written.
//
// Bodies: a filter that implements on_request_data / on_response_data sees
// the body as it streams (never whole unless it buffers it itself, up to a
// limit it configures) and may replace the batch with bytes it owns, valid
// until its next call of the same hook or on_stream_end() (a compressor, a
// decompressor). A filter that changes a body's length, in either
// direction, removes Content-Length in its headers hook
// (remove_request_header / remove_response_header) and calls
// set_request_streamed() / set_response_streamed(): the body then goes out
// chunked (HTTP/1.1) or as DATA frames without a length (HTTP/2). A body
// hook may answer with send_local_reply() (a decompressor's 413): the
// exchange ends with that reply, or, when the response has already
// started, the stream is reset (the client sees it cut short).
//
// Buffered request body: a request-headers hook that must see the body
// before deciding (ext_authz with_request_body) calls
// buffer_request_body(max) and returns kStopIteration. The stream reads the
// body, up to `max` bytes (plus at most one read batch), and calls that
// filter's on_request_body_buffered() once, with `complete` false when the
// body is longer; the filter then continues or answers as after any pause.
// The buffered bytes are forwarded first, then the rest of the body.
//
// Local replies (errors the proxy makes, a 429, a cache hit) pass through
// the response hooks too, with a response head of their own. A hook of the
// upstream's response head may answer with send_response() in its place (a
// cache serving a revalidated or a stale entry): the upstream's is dropped
// and the answer passes through the response hooks as a local reply.
//
// Everything runs on the stream's worker thread; filters never block it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "http/http1_parser.h"

namespace boost::asio {
class io_context;
}

namespace sidecar::net {
struct TlsInfo;
}

namespace sidecar::http {

enum class FilterStatus { kContinue, kStopIteration };

using Spans = std::vector<boost::asio::const_buffer>;

// An HTTP request a filter makes itself (ext_authz, a JWKS, an OAuth2 token
// endpoint), to a cluster of the config, over the proxy's own upstream code.
struct ClientRequest {
  std::string method = "GET";
  std::string path = "/";  // origin-form
  std::string authority;   // Host; default: the endpoint
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{1000};  // the whole exchange
};

struct ClientResponse {
  int status = 0;                                            // 0: no response (error says why)
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;
  std::string error;  // "timed out after 200ms", "connect failed: ...", "no cluster x"
};

// Sends ClientRequests. `done` runs once, on the worker's thread, never
// inside send(); it may run after the stream that asked has ended: a filter
// guards its state (e.g. a shared liveness flag) and cancel() drops the
// answer of a request it no longer wants.
class AsyncClient {
 public:
  using Done = std::function<void(ClientResponse)>;
  // A handle for cancel(); 0 when the request failed at once (then `done`
  // still runs, posted).
  virtual uint64_t send(std::string_view cluster, ClientRequest request, Done done) = 0;
  virtual void cancel(uint64_t handle) = 0;

 protected:
  ~AsyncClient() = default;
};

// A response a filter sends in place of the upstream's.
struct LocalResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // content-type included, if any
  std::string body;
  // When set, the body instead of `body`: bytes the filter shares (a cache
  // entry's), written without a copy of their own.
  std::shared_ptr<const std::string> shared_body;
};

// What a filter can see and do. Implemented by the stream.
class FilterCallbacks {
 public:
  // ---- the request ----
  virtual const RequestHead& request() const = 0;
  // The origin-form path as routed ("/api/x?y"), and the authority.
  virtual std::string_view path() const = 0;
  virtual std::string_view authority() const = 0;
  // The client's address without port, and its TLS facts (null on plain TCP).
  virtual std::string_view peer_ip() const = 0;
  virtual const net::TlsInfo* tls() const = 0;
  virtual std::string_view listener_name() const = 0;
  virtual std::string_view route_name() const = 0;
  // The port the request came in on: the listener's configured port, or
  // its bound port when configured with 0 (rbac destination_port; Envoy's
  // destination port without original-dst).
  virtual uint16_t local_port() const = 0;
  // The client's address with its port ("10.0.0.1:53000", "[::1]:53000"),
  // as %DOWNSTREAM_REMOTE_ADDRESS% logs it.
  virtual std::string_view peer_address() const { return {}; }
  // The endpoint ("10.0.0.5:8080") of the current upstream attempt, as
  // %UPSTREAM_HOST% logs it; "" before one is chosen (on the request path)
  // and for answers that never went upstream.
  virtual std::string_view upstream_host() const { return {}; }
  // The wall clock when the request's first byte arrived (%START_TIME%).
  virtual std::chrono::system_clock::time_point start_time() const {
    return std::chrono::system_clock::now();
  }
  // The typed per-route config of filter `name` on the chosen route
  // (`typed_per_filter_config`), or null: it overrides the listener's.
  virtual const void* route_config(std::string_view name) const = 0;

  // ---- edits of the request sent upstream ----
  // Adds a field line (after the received ones).
  virtual void add_request_header(std::string_view name, std::string_view value) = 0;
  // Drops every received request field called `name` (case-insensitive).
  virtual void remove_request_header(std::string_view name) = 0;
  // remove + add.
  void set_request_header(std::string_view name, std::string_view value) {
    remove_request_header(name);
    add_request_header(name, value);
  }
  // Replaces the path sent upstream (rewrites); `path` is copied.
  virtual void set_request_path(std::string_view path) = 0;
  // The request body's length changes (decompression, grpc-web text): it is
  // sent streamed (chunked to HTTP/1.1 upstreams) instead of with its
  // Content-Length, which the stream then drops too.
  virtual void set_request_streamed() = 0;
  // From on_request_headers, before returning kStopIteration: read the
  // request body (up to `max_bytes`, plus at most one read batch) and call
  // this filter's on_request_body_buffered() once it is whole or longer.
  // Without a body that call comes at once, after the hook returns.
  virtual void buffer_request_body(size_t max_bytes) = 0;

  // ---- edits of the response sent downstream (response hooks) ----
  virtual void add_response_header(std::string_view name, std::string_view value) = 0;
  virtual void remove_response_header(std::string_view name) = 0;
  void set_response_header(std::string_view name, std::string_view value) {
    remove_response_header(name);
    add_response_header(name, value);
  }
  // The response body's length changes (compression): it is sent streamed
  // (chunked to HTTP/1.1 clients) instead of with its Content-Length.
  virtual void set_response_streamed() = 0;

  // ---- answers ----
  // Answers the request with `status` and a text/plain `body`.
  virtual void send_local_reply(int status, std::string_view body) = 0;
  // Answers with a whole response of the filter's making.
  virtual void send_response(LocalResponse response) = 0;
  // Sets a response flag for the access log (accesslog::ResponseFlag bits:
  // RL for a rate limit, DI/FI for faults, ...).
  virtual void set_response_flag(uint32_t flag) = 0;
  // Why the proxy answered as it did, for %RESPONSE_CODE_DETAILS%
  // ("jwt_authn_expired", "rbac_access_denied"); copied.
  virtual void set_response_detail(std::string_view detail) = 0;

  // ---- state shared by the filters of one stream (Envoy's dynamic
  // metadata): a filter publishes facts ("jwt.sub") for the next ones. ----
  virtual void set_metadata(std::string_view key, std::string_view value) = 0;
  // The value, or nothing.
  virtual std::optional<std::string_view> metadata(std::string_view key) const = 0;

  // ---- asynchronous continuation ----
  // After kStopIteration without an answer: the chain goes on after the
  // filter that stopped. At most once per stop.
  virtual void continue_request() = 0;
  // The worker's event loop, for timers and asynchronous clients.
  virtual boost::asio::io_context& io() = 0;
  // HTTP requests to the config's clusters, from this worker.
  virtual AsyncClient& http_client() = 0;

  // ---- side requests to the route's cluster (a cache's background
  // revalidation, nginx's proxy_cache_background_update) ----
  // The cluster this request goes to: the route's, or with
  // weighted_clusters the one chosen for this request (chosen now if not
  // yet, and kept for the request itself); "" without a route or for a
  // route that answers itself (redirect, direct_response).
  virtual std::string_view route_cluster() = 0;
  // A copy of this request's head as the route sends it upstream, for
  // http_client().send(route_cluster(), ...): method, origin-form path after
  // the route's prefix_rewrite / regex_rewrite, authority (host_rewrite's
  // literal; "" for auto_host_rewrite, so the endpoint's), the end-to-end
  // fields received (no hop-by-hop, Host, Content-Length, Expect) with the
  // filters' edits so far, no body, and the route's timeout (15 s when it
  // has none). Not in it: what the stream adds when it sends (X-Forwarded-*,
  // X-Request-Id): the side request is the proxy's own.
  virtual ClientRequest upstream_request() = 0;

 protected:
  ~FilterCallbacks() = default;
};

class HttpFilter {
 public:
  virtual ~HttpFilter() = default;
  virtual FilterStatus on_request_headers(FilterCallbacks& callbacks) {
    return FilterStatus::kContinue;
  }
  // After buffer_request_body(): the body's first bytes (at least
  // `max_bytes` when not `complete`, the whole body when `complete`; valid
  // until the filter continues or answers). The filter then calls
  // continue_request() or answers, now or later.
  virtual void on_request_body_buffered(std::string_view body, bool complete,
                                        FilterCallbacks& callbacks) {}
  // A batch of request body bytes (`end`: the last); may replace `data`.
  virtual void on_request_data(Spans& data, bool end, FilterCallbacks& callbacks) {}
  // The response head (the upstream's, or a local reply's).
  virtual void on_response_headers(const ResponseHead& response, FilterCallbacks& callbacks) {}
  // A batch of response body bytes (`end`: the last); may replace `data`.
  virtual void on_response_data(Spans& data, bool end, FilterCallbacks& callbacks) {}
  // The response's trailer fields (an HTTP/2 upstream's; names in lower
  // case), just before the last on_response_data; only for filters that
  // want response data. Returns true when the filter takes them into the
  // body itself (grpc_web): they are then not sent as trailers.
  virtual bool on_response_trailers(
      const std::vector<std::pair<std::string, std::string>>& trailers,
      FilterCallbacks& callbacks) {
    return false;
  }
  // The exchange is over (complete, answered, or reset): drop per-request
  // state, cancel pending work.
  virtual void on_stream_end() {}
  // Whether the filter has body hooks (the stream skips the calls otherwise).
  virtual bool wants_request_data() const { return false; }
  virtual bool wants_response_data() const { return false; }
};

class HttpFilterFactory {
 public:
  virtual ~HttpFilterFactory() = default;
  // A new instance. Thread-safe.
  virtual std::unique_ptr<HttpFilter> create() const = 0;
};

}  // namespace sidecar::http
