#include "stats/stats.h"

#include <algorithm>
#include <array>
#include <map>

#include <fmt/format.h>

#include "stats/metric_writer.h"

namespace sidecar::stats {
namespace {

constexpr uint64_t kNanos = 1'000'000'000;

constexpr std::array<uint64_t, kBuckets> make_bucket_ns() {
  std::array<uint64_t, kBuckets> ns{};
  for (size_t i = 0; i < kBuckets; ++i) {
    ns[i] = static_cast<uint64_t>(kBucketSeconds[i] * 1e9 + 0.5);
  }
  return ns;
}
constexpr std::array<uint64_t, kBuckets> kBucketNs = make_bucket_ns();

constexpr uint32_t kOtherCode = 999;

template <typename T>
std::vector<T*> pointers(const std::vector<std::unique_ptr<T>>& blocks) {
  std::vector<T*> out;
  out.reserve(blocks.size());
  for (const auto& b : blocks) out.push_back(b.get());
  return out;
}

template <typename T>
std::vector<std::unique_ptr<T>> make_blocks(unsigned n) {
  std::vector<std::unique_ptr<T>> blocks;
  for (unsigned i = 0; i < n; ++i) blocks.push_back(std::make_unique<T>());
  return blocks;
}

}  // namespace

void Histogram::observe(uint64_t ns) {
  size_t i = 0;
  while (i < kBuckets && ns > kBucketNs[i]) ++i;
  buckets_[i].add();
  count_.add();
  sum_ns_.add(ns);
}

void RouteStats::count_status(uint32_t code) {
  for (size_t i = 0; i < kCodeSlots - 1; ++i) {
    const uint32_t c = codes[i].code.load(std::memory_order_relaxed);
    if (c == code) {
      codes[i].count.add();
      return;
    }
    if (c == 0) {
      // Only this worker writes this block: claiming needs no CAS. The count
      // is written before the code is published (release), so a scrape that
      // sees the code sees a count that includes this response... or not
      // yet: either is a valid instant.
      codes[i].count.add();
      codes[i].code.store(code, std::memory_order_release);
      return;
    }
  }
  CodeSlot& other = codes[kCodeSlots - 1];
  other.count.add();
  if (other.code.load(std::memory_order_relaxed) == 0) {
    other.code.store(kOtherCode, std::memory_order_release);
  }
}

Store::Store(unsigned workers, std::vector<std::string> reject_reasons)
    : workers_(workers), reject_reasons_(std::move(reject_reasons)) {
  workers_stats_ = make_blocks<WorkerStats>(workers);
}

Store::~Store() = default;

std::vector<RouteStats*> Store::route(const std::string& listener, const std::string& route,
                                      const std::string& cluster) {
  auto& blocks = routes_[{listener, route, cluster}];
  if (blocks.empty()) blocks = make_blocks<RouteStats>(workers_);
  return pointers(blocks);
}

std::vector<ListenerStats*> Store::listener(const std::string& name) {
  auto& blocks = listeners_[name];
  if (blocks.empty()) blocks = make_blocks<ListenerStats>(workers_);
  return pointers(blocks);
}

std::vector<TcpStats*> Store::tcp(const std::string& listener) {
  auto& blocks = tcp_listeners_[listener];
  if (blocks.empty()) blocks = make_blocks<TcpStats>(workers_);
  return pointers(blocks);
}

std::vector<EndpointStats*> Store::endpoint(const std::string& cluster,
                                            const std::string& endpoint) {
  auto& blocks = endpoints_[{cluster, endpoint}];
  if (blocks.empty()) blocks = make_blocks<EndpointStats>(workers_);
  return pointers(blocks);
}

std::vector<Store::EndpointTotals> Store::endpoints() const {
  std::vector<EndpointTotals> out;
  for (const auto& [key, blocks] : endpoints_) {
    EndpointTotals t{key.first, key.second, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (const auto& b : blocks) {
      t.connections_active += b->connections_active.get();
      t.connections_idle += b->connections_idle.get();
      t.pending_requests += b->pending_requests.get();
      t.requests_active += b->requests_active.get();
      t.connections_total += b->connections_total.get();
      t.connect_failures += b->connect_failures.get();
      t.connect_timeouts += b->connect_timeouts.get();
      t.request_timeouts += b->request_timeouts.get();
      t.resets += b->resets.get();
      t.requests_total += b->requests_total.get();
      t.requests_5xx += b->requests_5xx.get();
    }
    out.push_back(std::move(t));
  }
  return out;
}

void Store::collect(MetricWriter& w) const {
  // Per route.
  w.family("sidecar_http_requests_total", MetricType::kCounter,
           "Responses sent downstream, by listener, route, cluster and status code.");
  std::vector<std::pair<uint32_t, uint64_t>> codes;
  for (const auto& [key, blocks] : routes_) {
    const auto& [listener, route, cluster] = key;
    codes.clear();
    for (const auto& b : blocks) {
      for (const auto& slot : b->codes) {
        const uint32_t code = slot.code.load(std::memory_order_acquire);
        if (code == 0) break;
        auto it = std::find_if(codes.begin(), codes.end(),
                               [code](const auto& p) { return p.first == code; });
        if (it == codes.end()) {
          codes.emplace_back(code, slot.count.get());
        } else {
          it->second += slot.count.get();
        }
      }
    }
    std::sort(codes.begin(), codes.end());
    for (const auto& [code, count] : codes) {
      char code_text[8], class_text[8];
      std::string_view code_view = "other", class_view = "other";
      if (code != kOtherCode) {
        auto r = fmt::format_to_n(code_text, sizeof(code_text), "{}", code);
        code_view = std::string_view(code_text, r.size);
        r = fmt::format_to_n(class_text, sizeof(class_text), "{}xx", code / 100);
        class_view = std::string_view(class_text, r.size);
      }
      const Label labels[] = {{"listener", listener},
                              {"route", route},
                              {"cluster", cluster},
                              {"code_class", class_view},
                              {"code", code_view}};
      w.sample(labels, static_cast<double>(count));
    }
  }

  auto route_counter = [&](std::string_view name, std::string_view help, auto get) {
    w.family(name, MetricType::kCounter, help);
    for (const auto& [key, blocks] : routes_) {
      uint64_t sum = 0;
      for (const auto& b : blocks) sum += get(*b);
      const Label labels[] = {{"listener", std::get<0>(key)},
                              {"route", std::get<1>(key)},
                              {"cluster", std::get<2>(key)}};
      w.sample(labels, static_cast<double>(sum));
    }
  };
  route_counter("sidecar_http_requests_reset_total",
                "Requests that ended without a complete response (a side closed or timed out).",
                [](const RouteStats& s) { return s.resets.get(); });
  w.family("sidecar_grpc_requests_total", MetricType::kCounter,
           "gRPC calls by listener, route, cluster and gRPC status code (grpc-status, or "
           "mapped from the HTTP status when the answer had none).");
  for (const auto& [key, blocks] : routes_) {
    for (size_t g = 0; g < RouteStats::kGrpcStatuses; ++g) {
      uint64_t sum = 0;
      for (const auto& b : blocks) sum += b->grpc_status[g].get();
      if (sum == 0) continue;
      char text[4];
      const auto r = fmt::format_to_n(text, sizeof(text), "{}", g);
      const Label labels[] = {{"listener", std::get<0>(key)},
                              {"route", std::get<1>(key)},
                              {"cluster", std::get<2>(key)},
                              {"grpc_status", std::string_view(text, r.size)}};
      w.sample(labels, static_cast<double>(sum));
    }
  }
  route_counter("sidecar_http_request_body_bytes_total", "Request body bytes forwarded upstream.",
                [](const RouteStats& s) { return s.request_body_bytes.get(); });
  route_counter("sidecar_http_response_body_bytes_total", "Response body bytes sent downstream.",
                [](const RouteStats& s) { return s.response_body_bytes.get(); });

  auto route_histogram = [&](std::string_view name, std::string_view help, bool upstream) {
    w.family(name, MetricType::kHistogram, help);
    for (const auto& [key, blocks] : routes_) {
      uint64_t buckets[kBuckets + 1] = {};
      uint64_t count = 0, sum_ns = 0;
      for (const auto& b : blocks) {
        const Histogram& h = upstream ? b->upstream_duration : b->duration;
        for (size_t i = 0; i <= kBuckets; ++i) buckets[i] += h.bucket(i);
        count += h.count();
        sum_ns += h.sum_ns();
      }
      const Label labels[] = {{"listener", std::get<0>(key)},
                              {"route", std::get<1>(key)},
                              {"cluster", std::get<2>(key)}};
      w.histogram(labels, kBucketSeconds, buckets, kBuckets,
                  static_cast<double>(sum_ns) / static_cast<double>(kNanos), count);
    }
  };
  route_histogram("sidecar_http_request_duration_seconds",
                  "Downstream request duration: first byte of the request to last byte of the "
                  "response.",
                  false);
  route_histogram("sidecar_upstream_request_duration_seconds",
                  "Upstream request duration: request sent upstream to response complete.", true);

  // Per listener.
  auto listener_metric = [&](std::string_view name, MetricType type, std::string_view help,
                             auto get) {
    w.family(name, type, help);
    for (const auto& [listener, blocks] : listeners_) {
      int64_t sum = 0;
      for (const auto& b : blocks) sum += static_cast<int64_t>(get(*b));
      const Label labels[] = {{"listener", listener}};
      w.sample(labels, static_cast<double>(sum));
    }
  };
  listener_metric("sidecar_downstream_connections_active", MetricType::kGauge,
                  "Open downstream connections.",
                  [](const ListenerStats& s) { return s.connections_active.get(); });
  listener_metric("sidecar_downstream_connections_total", MetricType::kCounter,
                  "Downstream connections accepted.",
                  [](const ListenerStats& s) { return s.connections_total.get(); });
  listener_metric("sidecar_http_requests_active", MetricType::kGauge, "Requests in flight.",
                  [](const ListenerStats& s) { return s.requests_active.get(); });
  listener_metric("sidecar_http_upgrades_total", MetricType::kCounter,
                  "Upgrade requests (WebSocket, RFC 8441 extended CONNECT) the upstream switched "
                  "to a tunnel.",
                  [](const ListenerStats& s) { return s.upgrades_total.get(); });
  listener_metric("sidecar_http_upgrades_active", MetricType::kGauge, "Open upgrade tunnels.",
                  [](const ListenerStats& s) { return s.upgrades_active.get(); });
  w.family("sidecar_http_rejected_requests_total", MetricType::kCounter,
           "Requests answered by the proxy itself without reaching an upstream, by reason.");
  for (const auto& [listener, blocks] : listeners_) {
    for (size_t r = 0; r < reject_reasons_.size() && r < ListenerStats::kMaxRejectReasons; ++r) {
      uint64_t sum = 0;
      for (const auto& b : blocks) sum += b->rejected[r].get();
      if (sum == 0) continue;
      const Label labels[] = {{"listener", listener}, {"reason", reject_reasons_[r]}};
      w.sample(labels, static_cast<double>(sum));
    }
  }

  w.family("sidecar_tls_handshakes_total", MetricType::kCounter,
           "Completed TLS handshakes of downstream connections, by version.");
  for (const auto& [listener, blocks] : listeners_) {
    for (size_t v = 0; v < std::size(kTlsVersions); ++v) {
      uint64_t sum = 0;
      for (const auto& b : blocks) sum += b->tls_handshakes[v].get();
      if (sum == 0) continue;
      const Label labels[] = {{"listener", listener}, {"version", kTlsVersions[v]}};
      w.sample(labels, static_cast<double>(sum));
    }
  }
  w.family("sidecar_tls_handshake_errors_total", MetricType::kCounter,
           "Failed TLS handshakes of downstream connections, by reason.");
  for (const auto& [listener, blocks] : listeners_) {
    for (size_t r = 0; r < std::size(kTlsErrors); ++r) {
      uint64_t sum = 0;
      for (const auto& b : blocks) sum += b->tls_handshake_errors[r].get();
      if (sum == 0) continue;
      const Label labels[] = {{"listener", listener}, {"reason", kTlsErrors[r]}};
      w.sample(labels, static_cast<double>(sum));
    }
  }

  w.family("sidecar_http2_connections_total", MetricType::kCounter,
           "Downstream connections that spoke HTTP/2.");
  for (const auto& [listener, blocks] : listeners_) {
    uint64_t sum = 0;
    for (const auto& b : blocks) sum += b->http2_connections.get();
    if (sum == 0) continue;
    const Label labels[] = {{"listener", listener}};
    w.sample(labels, static_cast<double>(sum));
  }
  w.family("sidecar_http2_protection_total", MetricType::kCounter,
           "HTTP/2 connections closed or streams reset by a protection, by reason.");
  for (const auto& [listener, blocks] : listeners_) {
    for (size_t r = 0; r < std::size(kHttp2Protections); ++r) {
      uint64_t sum = 0;
      for (const auto& b : blocks) sum += b->http2_protections[r].get();
      if (sum == 0) continue;
      const Label labels[] = {{"listener", listener}, {"reason", kHttp2Protections[r]}};
      w.sample(labels, static_cast<double>(sum));
    }
  }

  // Per TCP proxy listener.
  auto tcp_metric = [&](std::string_view name, MetricType type, std::string_view help, auto get) {
    w.family(name, type, help);
    for (const auto& [listener, blocks] : tcp_listeners_) {
      int64_t sum = 0;
      for (const auto& b : blocks) sum += static_cast<int64_t>(get(*b));
      const Label labels[] = {{"listener", listener}};
      w.sample(labels, static_cast<double>(sum));
    }
  };
  tcp_metric("sidecar_tcp_connections_active", MetricType::kGauge,
             "Open connections of TCP proxy listeners.",
             [](const TcpStats& s) { return s.connections_active.get(); });
  tcp_metric("sidecar_tcp_connections_total", MetricType::kCounter,
             "Connections accepted by TCP proxy listeners.",
             [](const TcpStats& s) { return s.connections_total.get(); });
  tcp_metric("sidecar_tcp_received_bytes_total", MetricType::kCounter,
             "Bytes received from downstream clients of TCP proxy listeners.",
             [](const TcpStats& s) { return s.received_bytes.get(); });
  tcp_metric("sidecar_tcp_sent_bytes_total", MetricType::kCounter,
             "Bytes sent to downstream clients of TCP proxy listeners.",
             [](const TcpStats& s) { return s.sent_bytes.get(); });
  tcp_metric("sidecar_tcp_connect_failures_total", MetricType::kCounter,
             "TCP proxy connections closed because the upstream connect failed.",
             [](const TcpStats& s) { return s.connect_failures.get(); });
  tcp_metric("sidecar_tcp_idle_timeouts_total", MetricType::kCounter,
             "TCP proxy connections closed by the listener's idle_timeout.",
             [](const TcpStats& s) { return s.idle_timeouts.get(); });

  // Per cluster, summed over its endpoints.
  auto cluster_metric = [&](std::string_view name, MetricType type, std::string_view help,
                            auto get) {
    w.family(name, type, help);
    std::map<std::string_view, int64_t> sums;
    for (const auto& [key, blocks] : endpoints_) {
      int64_t& sum = sums[key.first];
      for (const auto& b : blocks) sum += static_cast<int64_t>(get(*b));
    }
    for (const auto& [cluster, sum] : sums) {
      const Label labels[] = {{"cluster", cluster}};
      w.sample(labels, static_cast<double>(sum));
    }
  };
  cluster_metric("sidecar_upstream_connections_active", MetricType::kGauge,
                 "Open upstream connections (connecting, in use or pooled).",
                 [](const EndpointStats& s) { return s.connections_active.get(); });
  cluster_metric("sidecar_upstream_connections_idle", MetricType::kGauge,
                 "Upstream connections in the keep-alive pool.",
                 [](const EndpointStats& s) { return s.connections_idle.get(); });
  cluster_metric("sidecar_upstream_pending_requests", MetricType::kGauge,
                 "Requests waiting for an upstream connection to be established.",
                 [](const EndpointStats& s) { return s.pending_requests.get(); });
  cluster_metric("sidecar_upstream_requests_active", MetricType::kGauge,
                 "Requests in flight to the cluster's endpoints (attempts, retries included).",
                 [](const EndpointStats& s) { return s.requests_active.get(); });
  cluster_metric("sidecar_upstream_connections_total", MetricType::kCounter,
                 "Upstream connections opened.",
                 [](const EndpointStats& s) { return s.connections_total.get(); });
  cluster_metric("sidecar_upstream_requests_total", MetricType::kCounter, "Requests sent upstream.",
                 [](const EndpointStats& s) { return s.requests_total.get(); });
  cluster_metric("sidecar_upstream_connect_failures_total", MetricType::kCounter,
                 "Upstream connects that failed (refused, unreachable or timed out).",
                 [](const EndpointStats& s) { return s.connect_failures.get(); });
  cluster_metric("sidecar_upstream_connect_timeouts_total", MetricType::kCounter,
                 "Upstream connects that timed out.",
                 [](const EndpointStats& s) { return s.connect_timeouts.get(); });
  cluster_metric("sidecar_upstream_request_timeouts_total", MetricType::kCounter,
                 "Requests whose response did not complete within the route timeout.",
                 [](const EndpointStats& s) { return s.request_timeouts.get(); });
  cluster_metric("sidecar_upstream_retries_total", MetricType::kCounter,
                 "Upstream attempts beyond the first under a route retry policy (hedges "
                 "included).",
                 [](const EndpointStats& s) { return s.retries.get(); });
  cluster_metric("sidecar_upstream_retry_successes_total", MetricType::kCounter,
                 "Retried requests that ended with a response not retried.",
                 [](const EndpointStats& s) { return s.retry_successes.get(); });
  cluster_metric("sidecar_upstream_retry_limit_exceeded_total", MetricType::kCounter,
                 "Retriable outcomes left as they were: no retry left (flag URX).",
                 [](const EndpointStats& s) { return s.retry_exhausted.get(); });
  cluster_metric("sidecar_upstream_hedges_total", MetricType::kCounter,
                 "Attempts started beside one that hit its per_try_timeout.",
                 [](const EndpointStats& s) { return s.hedges.get(); });
  cluster_metric("sidecar_upstream_per_try_timeouts_total", MetricType::kCounter,
                 "Attempts without a response head within the route's per_try_timeout.",
                 [](const EndpointStats& s) { return s.per_try_timeouts.get(); });
  {
    w.family("sidecar_upstream_responses_total", MetricType::kCounter,
             "Responses from upstream endpoints by status class, every attempt's.");
    std::map<std::string_view, std::array<uint64_t, 5>> sums;
    for (const auto& [key, blocks] : endpoints_) {
      auto& sum = sums[key.first];
      for (const auto& b : blocks) {
        for (size_t i = 0; i < 5; ++i) sum[i] += b->responses[i].get();
      }
    }
    static constexpr std::string_view kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    for (const auto& [cluster, sum] : sums) {
      for (size_t i = 0; i < 5; ++i) {
        const Label labels[] = {{"cluster", cluster}, {"code_class", kClasses[i]}};
        w.sample(labels, static_cast<double>(sum[i]));
      }
    }
  }
  cluster_metric("sidecar_upstream_resets_total", MetricType::kCounter,
                 "Upstream connections closed or reset before the response completed.",
                 [](const EndpointStats& s) { return s.resets.get(); });

  // Per worker.
  uint64_t lines = 0, dropped = 0;
  for (const auto& b : workers_stats_) {
    lines += b->access_log_lines.get();
    dropped += b->access_log_dropped.get();
  }
  w.family("sidecar_access_log_lines_total", MetricType::kCounter,
           "Access log lines handed to the writer.");
  w.sample({}, static_cast<double>(lines));
  w.family("sidecar_access_log_dropped_total", MetricType::kCounter,
           "Access log lines dropped because the writer fell behind.");
  w.sample({}, static_cast<double>(dropped));
  int64_t in_use = 0, free_blocks = 0;
  for (const auto& b : workers_stats_) {
    in_use += b->read_buffers_in_use.get();
    free_blocks += b->read_buffers_free.get();
  }
  w.family("sidecar_read_buffers_in_use", MetricType::kGauge,
           "16 KiB read buffers held by connections (an idle keep-alive connection holds none); "
           "updated every second.");
  w.sample({}, static_cast<double>(in_use));
  w.family("sidecar_read_buffers_free", MetricType::kGauge,
           "16 KiB read buffers kept by the workers' pools for reuse; updated every second.");
  w.sample({}, static_cast<double>(free_blocks));
}

}  // namespace sidecar::stats
