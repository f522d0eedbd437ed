// Counters, gauges and histograms of the data path, sharded per worker.
//
// Every metric block exists once per worker and is written only by that
// worker, with relaxed atomic loads and stores (a plain add on x86: no lock,
// no read-modify-write instruction); blocks are allocated separately and
// aligned to cache lines, so workers never share one. A scrape (on the main
// thread) reads every worker's block with relaxed loads and adds them up: a
// scrape may see an update of one worker a moment before another's, never a
// torn value.
//
// Label sets (listener, route, cluster, endpoint) get their blocks when a
// config snapshot is built, on the main thread, and keep them for the life of
// the process, so counters survive reloads and never go backwards.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace sidecar::stats {

class MetricWriter;

// Monotonic; written by one thread.
class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Goes up and down; written by one thread. A gauge summed over workers can
// be transiently off by the updates in flight.
class Gauge {
 public:
  void add(int64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(int64_t n = 1) { add(-n); }
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  int64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Bucket upper bounds in seconds, chosen for a proxy whose own time is tens
// of microseconds and whose upstreams answer in milliseconds to seconds.
inline constexpr double kBucketSeconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                            0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                            1,      2.5,     5,      10};
inline constexpr size_t kBuckets = std::size(kBucketSeconds);

class Histogram {
 public:
  // Records one observation of `ns` nanoseconds.
  void observe(uint64_t ns);
  uint64_t bucket(size_t i) const {
    return buckets_[i].get();
  }  // not cumulative; i == kBuckets: +Inf
  uint64_t count() const { return count_.get(); }
  uint64_t sum_ns() const { return sum_ns_.get(); }

 private:
  Counter buckets_[kBuckets + 1];
  Counter count_;
  Counter sum_ns_;
};

// Per (listener, route, cluster), per worker.
struct alignas(64) RouteStats {
  static constexpr size_t kCodeSlots = 16;
  // Responses by status code: a slot is claimed by the first response with
  // its code (code 0 marks a free slot). With more distinct codes than slots,
  // the rest are counted in the last slot as code 999 ("other").
  struct CodeSlot {
    std::atomic<uint32_t> code{0};
    Counter count;
  };
  CodeSlot codes[kCodeSlots];
  Counter resets;               // requests that ended without a complete response
  Histogram duration;           // downstream: first byte of the request to last of the response
  Histogram upstream_duration;  // request sent upstream to response complete
  Counter request_body_bytes;
  Counter response_body_bytes;
  // gRPC calls by their status (0-16): grpc-status, or mapped from the
  // HTTP status when the answer had none.
  static constexpr size_t kGrpcStatuses = 17;
  Counter grpc_status[kGrpcStatuses];

  void count_status(uint32_t code);
};

// TLS versions and handshake failure reasons, by index (tls::Version and
// tls::HandshakeError keep the same order).
inline constexpr const char* kTlsVersions[] = {"TLSv1.2", "TLSv1.3"};
inline constexpr const char* kTlsErrors[] = {
    "no_client_certificate", "bad_certificate", "protocol", "timeout", "closed", "other"};
// Why an HTTP/2 connection or stream was cut by a protection (docs/proxy.md
// "HTTP/2"); the order is proxy::Http2Protection's.
inline constexpr const char* kHttp2Protections[] = {
    "rapid_reset",    "continuation_flood", "header_list_too_large",
    "ping_flood",     "settings_flood",     "outbound_flood",
    "invalid_stream", "refused_stream",     "refused_stream_flood"};

// Per listener, per worker.
struct alignas(64) ListenerStats {
  static constexpr size_t kMaxRejectReasons = 48;
  Gauge connections_active;
  Counter connections_total;
  Gauge requests_active;
  Counter rejected[kMaxRejectReasons];  // by reason index (see Store's reason names)
  Counter tls_handshakes[std::size(kTlsVersions)];
  Counter tls_handshake_errors[std::size(kTlsErrors)];
  Counter http2_protections[std::size(kHttp2Protections)];
  Counter http2_connections;  // downstream connections that spoke HTTP/2
  Counter upgrades_total;     // requests the upstream switched to a tunnel (WebSocket...)
  Gauge upgrades_active;      // ... whose tunnel is open
};

// Per TCP proxy listener (`protocol: tcp`), per worker.
struct alignas(64) TcpStats {
  Gauge connections_active;
  Counter connections_total;
  Counter received_bytes;    // read from downstream clients
  Counter sent_bytes;        // written to downstream clients
  Counter connect_failures;  // upstream connects refused, unreachable or timed out
  Counter idle_timeouts;     // connections closed by the listener's idle_timeout
};

// Per (cluster, endpoint), per worker.
struct alignas(64) EndpointStats {
  Gauge connections_active;  // open: connecting, in use or idle
  Gauge connections_idle;    // in the pool
  Gauge pending_requests;    // waiting for a connection to be established
  Gauge requests_active;     // attempts in flight (Envoy's upstream_rq_active)
  Counter connections_total;
  Counter connect_failures;  // refused, unreachable or timed out
  Counter connect_timeouts;
  Counter request_timeouts;  // route timeout before the response completed
  Counter resets;            // closed or reset by the upstream before the response completed
  Counter requests_total;
  Counter requests_5xx;  // 5xx from the upstream or because of it
  // Responses from the endpoint by class (index 0: 1xx ... 4: 5xx), every
  // attempt's, retried ones included.
  Counter responses[5];
  // The route retry policy (counted on the endpoint the retry goes to).
  Counter retries;          // attempts beyond the first (hedges included)
  Counter retry_successes;  // a retried request that got a response not retried
  Counter retry_exhausted;  // a retriable outcome with no retry left (URX)
  Counter hedges;           // attempts started beside one that timed out
  Counter per_try_timeouts;
};

// Per worker, not tied to a config.
struct alignas(64) WorkerStats {
  Counter access_log_lines;
  Counter access_log_dropped;  // the writer fell behind: lines not logged
  // The worker's read buffer pool (core::BufferPool), published by its
  // tick: blocks held by connections, and blocks kept free for reuse.
  Gauge read_buffers_in_use;
  Gauge read_buffers_free;
};

// The label sets and their per-worker blocks. All methods run on the main
// thread (snapshot building, scrapes); the blocks are written by workers.
class Store {
 public:
  // `reject_reasons` names the indexes of ListenerStats::rejected.
  Store(unsigned workers, std::vector<std::string> reject_reasons);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  unsigned workers() const { return workers_; }

  // The blocks (index: worker) for a label set; created on first use.
  std::vector<RouteStats*> route(const std::string& listener, const std::string& route,
                                 const std::string& cluster);
  std::vector<ListenerStats*> listener(const std::string& name);
  std::vector<TcpStats*> tcp(const std::string& listener);
  std::vector<EndpointStats*> endpoint(const std::string& cluster, const std::string& endpoint);
  WorkerStats* worker(unsigned index) { return workers_stats_[index].get(); }

  // Writes every data-path metric, summed over workers.
  void collect(MetricWriter& w) const;
  // The endpoints of `cluster` (all clusters when empty) with their counters
  // summed over workers, for /clusters.
  struct EndpointTotals {
    std::string cluster, endpoint;
    int64_t connections_active, connections_idle, pending_requests, requests_active;
    uint64_t connections_total, connect_failures, connect_timeouts, request_timeouts, resets,
        requests_total, requests_5xx;
  };
  std::vector<EndpointTotals> endpoints() const;

 private:
  template <typename T>
  using Blocks = std::vector<std::unique_ptr<T>>;

  const unsigned workers_;
  const std::vector<std::string> reject_reasons_;
  std::map<std::tuple<std::string, std::string, std::string>, Blocks<RouteStats>> routes_;
  std::map<std::string, Blocks<ListenerStats>> listeners_;
  std::map<std::string, Blocks<TcpStats>> tcp_listeners_;
  std::map<std::pair<std::string, std::string>, Blocks<EndpointStats>> endpoints_;
  Blocks<WorkerStats> workers_stats_;
};

}  // namespace sidecar::stats
