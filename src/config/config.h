// The typed, validated, immutable configuration of a sidecar process.
//
// A Config is built once from YAML (see loader.h), never modified, and shared
// as std::shared_ptr<const Config> by every thread: reading it needs no lock.
// Every field and its default is documented in docs/config.md; the defaults
// below follow Envoy's where Envoy has one.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/access_log_format.h"
#include "config/health_config.h"

namespace re2 {
class RE2;
}

namespace sidecar::config {

using Duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

// An IP address and port, as configured. `host` is an IP literal (IPv6
// without brackets); host names are resolved when the config is loaded.
struct Address {
  std::string host;
  uint16_t port = 0;
  std::string hostname;  // the name it was resolved from; "" for an IP literal
  // Cluster endpoints only (Envoy's load_balancing_weight and priority):
  // the share of traffic relative to the other endpoints of its priority,
  // and the priority level (0 first; docs/resilience.md).
  uint32_t weight = 1;
  uint32_t priority = 0;
  // "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;
  bool operator==(const Address&) const = default;
};

// Matches one request header (Envoy's HeaderMatcher). The name is compared
// case-insensitively; when the header appears more than once, its values are
// checked one by one and any match counts.
struct HeaderMatcher {
  enum class Kind { kExact, kPrefix, kSuffix, kContains, kPresent, kRegex };
  std::string name;
  Kind kind = Kind::kPresent;
  std::string value;
  std::shared_ptr<const re2::RE2> regex;  // kRegex only: RE2, full match
  bool invert = false;
};

// All conditions present must hold. Empty strings mean "any".
struct RouteMatch {
  std::string prefix;  // the request path starts with this
  std::string path;    // the request path, without query, equals this
  std::string host;    // "api.example.com", "*.example.com", "api.*" or "*"
  std::vector<HeaderMatcher> headers;
};

// When and how a route retries a failed attempt (Envoy's RetryPolicy;
// docs/resilience.md). A retry goes to another endpoint when there is one.
struct RetryPolicy {
  // Conditions, Envoy's `retry_on` names.
  enum On : uint32_t {
    k5xx = 1u << 0,             // "5xx": any 5xx, a reset, a connect failure, a per-try timeout
    kGatewayError = 1u << 1,    // "gateway-error": 502, 503, 504, and connect failures
    kReset = 1u << 2,           // "reset": no response (disconnect, reset, per-try timeout)
    kConnectFailure = 1u << 3,  // "connect-failure"
    kRetriable4xx = 1u << 4,    // "retriable-4xx": 409
    kRefusedStream = 1u << 5,   // "refused-stream": HTTP/2 REFUSED_STREAM
    kRetriableStatusCodes = 1u << 6,  // "retriable-status-codes": retriable_status_codes
  };
  uint32_t retry_on = 0;                         // On bits; 0: no retries
  std::vector<uint16_t> retriable_status_codes;  // also retried with any retry_on
  uint32_t num_retries = 1;           // retries after the first attempt (Envoy's default 1)
  Duration per_try_timeout = 0ms;     // 0: only the route timeout
  Duration base_interval = 25ms;      // full-jitter exponential back-off
  Duration max_interval = 250ms;      // default 10 x base_interval; also caps Retry-After
  bool retry_non_idempotent = false;  // POST/PATCH: only connect failures and refused streams
  bool hedge_on_per_try_timeout =
      false;  // a per-try timeout starts another attempt, keeps the first
  bool enabled() const { return retry_on != 0 || !retriable_status_codes.empty(); }
};

// A copy of the route's requests, fire-and-forget, to another cluster
// (Envoy's RequestMirrorPolicy). Host gets "-shadow"; the answer is dropped.
struct MirrorPolicy {
  std::string cluster;
  double fraction = 1.0;  // `runtime_fraction`: share of requests mirrored, 0..1
};

// One HTTP filter of a listener: its registered name and its parsed config
// (the filter's own type; see config/registry.h).
struct FilterConfig {
  std::string name;
  std::shared_ptr<const void> typed;
  bool operator==(const FilterConfig&) const = default;
};

// One entry of a route's hash_policy (Envoy's RouteAction.HashPolicy): what
// the consistent-hash key of a request is made of (docs/resilience.md).
struct HashPolicy {
  enum class Kind { kHeader, kCookie, kSourceIp, kQueryParameter };
  Kind kind = Kind::kHeader;
  std::string name;       // header (lower case), cookie or query parameter name
  Duration ttl{0};        // cookie: set with this Max-Age when absent (0: not set)
  std::string path;       // cookie: its Path attribute when set
  bool terminal = false;  // a key from this entry ends the list
  bool operator==(const HashPolicy&) const = default;
};

// A route's share for one cluster (Envoy's weighted_clusters).
struct WeightedCluster {
  std::string name;
  uint32_t weight = 0;
  bool operator==(const WeightedCluster&) const = default;
};

// Replaces every match of `pattern` in the path (query excluded) with
// `substitution` (RE2 rewrite syntax: \1 for a group); Envoy's regex_rewrite.
struct RegexRewrite {
  std::shared_ptr<const re2::RE2> pattern;  // null: none
  std::string substitution;
};

// A route that answers with a redirect instead of forwarding (Envoy's
// RedirectAction): each part of the request URL that is configured is
// replaced; the rest is kept.
struct Redirect {
  std::string scheme_redirect;  // "https" (https_redirect: true), "http", or "" to keep
  std::string host_redirect;    // replaces the authority (and drops its port)
  uint32_t port_redirect = 0;   // 0: keep (or drop, see docs/config.md)
  std::string path_redirect;    // the whole path (a query in it replaces the request's)
  std::string prefix_rewrite;   // replaces the matched prefix
  RegexRewrite regex_rewrite;
  uint16_t response_code = 301;  // 301, 302, 303, 307 or 308
  bool strip_query = false;
};

// A route that answers by itself (Envoy's direct_response).
struct DirectResponse {
  uint16_t status = 200;
  std::string body;  // from `body` text or `body.filename` (read at load)
  std::string content_type = "text/plain";
};

struct Route {
  std::string name;  // default "<listener>/<index>"
  RouteMatch match;
  std::string cluster;                             // empty with weighted_clusters
  std::vector<WeightedCluster> weighted_clusters;  // canaries: split by weight
  std::vector<HashPolicy> hash_policy;             // keys for ring_hash, maglev, weighted_clusters
  // Rewrites of the request sent upstream (docs/config.md "routes[]").
  std::string prefix_rewrite;  // replaces match.prefix (or match.path)
  RegexRewrite regex_rewrite;
  std::string host_rewrite;        // literal authority sent upstream
  bool auto_host_rewrite = false;  // the endpoint's configured host name
  // Answers without an upstream; at most one of them, and then no cluster.
  std::shared_ptr<const Redirect> redirect;
  std::shared_ptr<const DirectResponse> direct_response;
  // From the end of the request to the end of the response (Envoy's route
  // timeout); 0 disables. Exceeded before the response starts: 504.
  Duration timeout = 15s;
  RetryPolicy retry_policy;
  std::vector<MirrorPolicy> request_mirror_policies;
  // Sends x-sidecar-attempt-count (1 for the first attempt) upstream (Envoy's
  // include_request_attempt_count).
  bool include_request_attempt_count = false;
  // Per-route configs of the listener's filters (Envoy's
  // typed_per_filter_config): they override the listener's for this route.
  std::vector<FilterConfig> per_filter_config;
  // Upgrade types (RFC 9110 7.8 `Upgrade` tokens, case-insensitive) this
  // route turns into a byte tunnel after the upstream's 101 (Envoy's
  // upgrade_configs); an upgrade request of another type is answered 403.
  // `h2c` is never one: it is answered as HTTP/1.1 (RFC 9113 3.1).
  std::vector<std::string> upgrade{"websocket"};
  // No bytes moving in either direction of a request (or a tunnel) for this
  // long ends it (Envoy's route idle_timeout); 0: the listener's
  // stream_idle_timeout.
  Duration idle_timeout{0};
};

// TLS termination on a listener (docs/tls.md). Files are read, checked and
// watched by src/tls; `origin` is where the section is ("FILE:LINE:COL"), for
// errors found when the files are read.
struct CertificateFiles {
  std::string cert;    // PEM chain, leaf first
  std::string key;     // PEM private key
  std::string origin;  // "FILE:LINE:COL" of this entry
  bool operator==(const CertificateFiles&) const = default;
};

struct ServerTls {
  bool enabled = false;
  std::vector<CertificateFiles> certificates;  // chosen by SNI; the first is the default
  std::string min_version = "1.2";             // "1.2" | "1.3"
  std::vector<std::string> cipher_suites;      // TLS 1.2 only; empty: safe defaults
  std::vector<std::string> alpn{"http/1.1"};   // in order of preference
  std::string client_ca;                       // mTLS: verify client certificates
  bool require_client_cert = true;             // with client_ca; false: ask, verify if given
  std::vector<std::string> verify_client_san;  // allowed URI or DNS SANs; empty: any
  bool session_tickets = true;                 // resumption by tickets (keys rotated in memory)
  std::string origin;                          // "FILE:LINE:COL" of `tls`
  bool operator==(const ServerTls&) const = default;
};

// TLS origination to a cluster's endpoints.
struct ClientTls {
  bool enabled = false;
  std::string sni;                      // default: the endpoint's host name
  std::string ca = "system";            // "system" (the OS bundle) or a PEM file
  std::vector<std::string> verify_san;  // default: the SNI name [RFC 6125]
  std::string cert;                     // client certificate for mTLS
  std::string key;
  bool insecure_skip_verify = false;
  std::vector<std::string> alpn{"http/1.1"};
  std::string min_version = "1.2";
  std::string origin;  // "FILE:LINE:COL" of `tls`
  bool operator==(const ClientTls&) const = default;
};

// What the app learns of a TLS client's certificate, in the
// x-forwarded-client-cert header (Envoy's forward_client_cert_details).
enum class ForwardClientCert {
  kSanitize,       // remove the header
  kAppendForward,  // add this client's details to what came in
  kSanitizeSet,    // replace the header with this client's details
};

// Which way a listener's traffic goes. On shutdown, inbound listeners drain
// before the app is stopped; outbound ones keep serving the app until it exits.
enum class Direction { kInbound, kOutbound };

// What a listener's connections speak (Envoy's codec_type, and tcp_proxy):
// kAuto serves HTTP/1.1, or HTTP/2 when a connection starts with the h2
// preface (prior knowledge) or TLS negotiated "h2" by ALPN; kHttp1 only
// HTTP/1.1; kH2c only HTTP/2 (cleartext prior knowledge, or h2 by ALPN);
// kTcp copies bytes to `Listener::cluster` (docs/proxy.md "TCP proxy").
enum class ListenerProtocol { kAuto, kHttp1, kH2c, kTcp };

// HTTP/2 settings a listener advertises (Envoy's http2_protocol_options and
// its defaults). Sizes in bytes.
struct Http2Settings {
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_stream_window_size = 256 * 1024;
  uint32_t initial_connection_window_size = 1024 * 1024;
  uint32_t max_header_list_size = 60 * 1024;
  // RFC 8441 extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL): WebSocket
  // over HTTP/2 to an HTTP/1.1 upstream (Envoy's allow_connect; on here, as
  // the routes' `upgrade` default allows websocket).
  bool allow_connect = true;
  bool operator==(const Http2Settings&) const = default;
};

struct Listener {
  std::string name;
  Address address;
  Direction direction = Direction::kInbound;
  ListenerProtocol protocol = ListenerProtocol::kAuto;
  std::string cluster;        // protocol tcp only: where connections go
  std::vector<Route> routes;  // first match wins; none with protocol tcp
  Http2Settings http2;
  uint32_t max_request_headers_size = 60 * 1024;  // bytes: request line + fields
  uint32_t max_request_headers_count = 100;
  Duration request_headers_timeout = 10s;  // first byte to end of head; 408
  Duration idle_timeout = 1h;              // keep-alive connection with no request
  Duration stream_idle_timeout = 5min;     // an active request with no bytes moving
  bool access_log = true;  // log this listener's requests (when `access_log` is configured)
  std::vector<FilterConfig> filters;  // run in order on requests, in reverse on responses
  ServerTls tls;
  // Default: sanitize_set when client certificates are verified, else sanitize.
  ForwardClientCert forward_client_cert = ForwardClientCert::kSanitize;
};

// What a cluster's connections speak: HTTP/1.1 (a pool of keep-alive
// connections, one request each at a time), HTTP/2 over TLS (ALPN "h2"),
// or cleartext HTTP/2 with prior knowledge (streams multiplexed on few
// connections); or `auto`: over TLS, ALPN offers h2 and http/1.1 and the
// server's choice (learned per endpoint and worker) picks the codec;
// without TLS, HTTP/1.1 (Envoy's auto_config).
enum class UpstreamProtocol { kHttp1, kH2, kH2c, kAuto };

// Where a cluster's endpoints come from besides its static list: the live
// instances of a service registered in etcd (docs/registry.md). The
// `registry` module watches them and the process publishes each change as a
// new config snapshot with the cluster's endpoints replaced.
struct Discovery {
  std::string etcd_service;       // "" : static endpoints only
  std::vector<std::string> tags;  // an instance must carry all of them
  DnsDiscovery dns;               // `discovery: { dns: ... }` (config/health_config.h)
  bool operator==(const Discovery&) const = default;
};

// How a cluster picks an endpoint (Envoy's lb_policy; docs/resilience.md).
enum class LbPolicy { kRoundRobin, kLeastRequest, kRandom, kRingHash, kMaglev, kEwma };

// Envoy's load balancing knobs and their defaults.
struct LbSettings {
  uint32_t healthy_panic_threshold = 50;   // percent; below it a priority balances over all
  uint32_t overprovisioning_factor = 140;  // percent; 1.4 as Envoy
  uint32_t choice_count = 2;               // least_request: power of two choices
  double active_request_bias = 1.0;        // least_request with unequal weights
  uint64_t minimum_ring_size = 1024;       // ring_hash
  uint64_t maximum_ring_size = 8 * 1024 * 1024;
  Duration ewma_decay = 10s;         // ewma: linkerd2's peak-EWMA decay
  Duration ewma_default_rtt = 30ms;  // ewma: the estimate of an endpoint never measured
  bool operator==(const LbSettings&) const = default;
};

// Envoy's circuit breaker thresholds (priority DEFAULT) and retry budget.
struct CircuitBreakers {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_retries = 3;
  // retry_budget: when set, the retries allowed in flight are
  // max(budget_percent of the active requests, min_retry_concurrency),
  // replacing max_retries.
  bool retry_budget = false;
  double budget_percent = 20;
  uint32_t min_retry_concurrency = 3;
  bool operator==(const CircuitBreakers&) const = default;
};

struct Cluster {
  std::string name;
  UpstreamProtocol protocol = UpstreamProtocol::kHttp1;
  // With discovery: the endpoints discovered (the configured ones, if any,
  // until the first answer from etcd).
  std::vector<Address> endpoints;
  Discovery discovery;
  Duration connect_timeout = 5s;
  Duration idle_timeout = 1h;  // an unused pooled upstream connection is closed after this
  uint32_t max_requests_per_connection = 0;  // 0: unlimited
  uint32_t max_response_headers_size = 60 * 1024;
  uint32_t max_response_headers_count = 100;
  ClientTls tls;
  std::vector<HealthCheck> health_checks;  // config/health_config.h
  OutlierDetection outlier_detection;
  LbPolicy lb_policy = LbPolicy::kRoundRobin;
  LbSettings lb;
  CircuitBreakers circuit_breakers;
  bool operator==(const Cluster&) const = default;
};

struct Admin {
  Address address{"127.0.0.1", 9901, ""};
};

// How the sidecar decides the app is ready: a TCP connect to
// 127.0.0.1:<app.port>, or an HTTP GET of `http_path` answered 2xx or 3xx.
struct ReadyCheck {
  bool configured = false;  // `app.ready` was given (checks run even without a supervised app)
  std::string http_path;    // empty: TCP connect
  Duration period = 1s;
  Duration timeout = 1s;
};

enum class RestartPolicy { kNever, kOnFailure, kAlways };

// The supervised application (started after `--` on the command line).
struct App {
  uint16_t port = 8080;  // passed to the app as PORT
  ReadyCheck ready;
  RestartPolicy restart = RestartPolicy::kNever;
  Duration backoff_initial = 1s;  // first restart delay; doubles per restart
  Duration backoff_max = 30s;     // ... up to this; reset after a run of 10 * backoff_max
  Duration stop_timeout = 10s;    // SIGTERM to SIGKILL
};

struct Drain {
  Duration delay = 0s;  // /ready answers 503 but everything is served this long (endpoint removal)
  Duration timeout = 5s;  // in-flight requests get this long to finish on shutdown
};

// One line per request, written off the data path (see docs/config.md).
struct AccessLog {
  bool enabled = false;          // the `access_log` section is present
  std::string path = "stdout";   // stdout, stderr, or a file (reopened on SIGUSR1)
  bool json = true;              // a JSON object per line, else the text format
  std::vector<LogField> fields;  // JSON keys and their values; text: one field, empty key
  std::vector<std::pair<uint16_t, uint16_t>> status;  // inclusive ranges to log; empty: all
  double sample = 1.0;                                // the fraction of requests logged
  uint64_t buffer_size = 1 << 20;  // bytes of queue per worker; lines beyond it are dropped
  // Derived from the fields: the headers to capture, lower case.
  std::vector<std::string> request_headers;
  std::vector<std::string> response_headers;
  bool operator==(const AccessLog&) const = default;
};

// A process or cgroup whose resource use /metrics reports as app="<name>".
struct WatchedProcess {
  std::string name;
  std::string pid_file;  // a file holding the pid
  std::string cgroup;    // a cgroup v2 directory
};

struct Metrics {
  std::vector<WatchedProcess> processes;
};

// A top-level key owned by a module (DESIGN.md "Subsystems beside the data
// path"), parsed by the parser the module registered (config/registry.h).
struct Section {
  std::shared_ptr<const void> typed;  // the module's own config type
  std::string json;                   // the section as given (secrets redacted), for /config
  // A reload changed the section when its text changed.
  bool operator==(const Section& other) const { return json == other.json; }
};

struct Config {
  std::string source;  // the file it came from, or "<embedded default>"
  Admin admin;
  uint32_t workers = 0;  // 0: one per available CPU
  App app;
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters;
  Drain drain;
  AccessLog access_log;
  Metrics metrics;
  std::map<std::string, Section> sections;  // by top-level key
  bool watch = false;  // reload when the config file changes (checked every second)

  // The cluster called `name`, or -1.
  int cluster_index(std::string_view name) const;
  // The listener called `name`, or nullptr.
  const Listener* find_listener(std::string_view name) const;
  // The section under top-level key `key`, or nullptr.
  const Section* section(const std::string& key) const;
  // Its typed config, or nullptr (T: the type its parser returns).
  template <typename T>
  std::shared_ptr<const T> section_as(const std::string& key) const {
    const Section* s = section(key);
    return s != nullptr ? std::static_pointer_cast<const T>(s->typed) : nullptr;
  }
};

}  // namespace sidecar::config
