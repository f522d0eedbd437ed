#include "upstream/health_report.h"

#include <ctime>
#include <vector>

#include <fmt/format.h>

#include "stats/metric_writer.h"
#include "upstream/health.h"

namespace sidecar::upstream {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

std::string iso8601_ms(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(unix_ms % 1000));
}

}  // namespace

void collect_health(stats::MetricWriter& w, const config::Config& config) {
  using stats::MetricType;
  struct Row {
    const config::Cluster* config;
    ClusterHealth* health;
    size_t healthy = 0, degraded = 0, total = 0, ejected = 0, failed_hc = 0;
  };
  std::vector<Row> rows;
  for (const config::Cluster& c : config.clusters) {
    Row r{&c, &HealthRegistry::instance().cluster(c.name)};
    for (const auto& ep : r.health->members()) {
      ++r.total;
      if (ep->healthy()) ++r.healthy;
      if (ep->healthy() && ep->degraded_active_hc.load(kRelaxed)) ++r.degraded;
      if (ep->ejected.load(kRelaxed)) ++r.ejected;
      if (ep->failed_active_hc.load(kRelaxed)) ++r.failed_hc;
    }
    rows.push_back(r);
  }
  auto family = [&](std::string_view name, MetricType type, std::string_view help, auto get,
                    auto wanted) {
    w.family(name, type, help);
    for (const Row& r : rows) {
      if (!wanted(*r.config)) continue;
      const stats::Label labels[] = {{"cluster", r.config->name}};
      w.sample(labels, static_cast<double>(get(r)));
    }
  };
  auto all = [](const config::Cluster&) { return true; };
  auto checked = [](const config::Cluster& c) { return !c.health_checks.empty(); };
  auto outlier = [](const config::Cluster& c) { return c.outlier_detection.enabled; };
  auto dns = [](const config::Cluster& c) { return c.discovery.dns.enabled; };
  family(
      "sidecar_cluster_membership_endpoints", MetricType::kGauge, "Endpoints in the cluster.",
      [](const Row& r) { return r.total; }, all);
  family(
      "sidecar_cluster_membership_healthy", MetricType::kGauge,
      "Endpoints passing active health checks and not ejected (degraded ones included).",
      [](const Row& r) { return r.healthy; }, all);
  family(
      "sidecar_cluster_membership_degraded", MetricType::kGauge,
      "Healthy endpoints whose health check answered x-envoy-degraded.",
      [](const Row& r) { return r.degraded; }, all);
  family(
      "sidecar_cluster_health_check_attempts_total", MetricType::kCounter,
      "Active health checks run.",
      [](const Row& r) { return r.health->health_check_attempts.load(kRelaxed); }, checked);
  family(
      "sidecar_cluster_health_check_successes_total", MetricType::kCounter,
      "Active health checks passed.",
      [](const Row& r) { return r.health->health_check_successes.load(kRelaxed); }, checked);
  family(
      "sidecar_cluster_health_check_failures_total", MetricType::kCounter,
      "Active health checks failed (status, connect failure, timeout).",
      [](const Row& r) { return r.health->health_check_failures.load(kRelaxed); }, checked);
  family(
      "sidecar_cluster_health_check_unhealthy", MetricType::kGauge,
      "Endpoints failed by active health checks.", [](const Row& r) { return r.failed_hc; },
      checked);
  family(
      "sidecar_cluster_outlier_detection_ejections_active", MetricType::kGauge,
      "Endpoints ejected by outlier detection now.", [](const Row& r) { return r.ejected; },
      outlier);
  family(
      "sidecar_cluster_outlier_detection_ejections_total", MetricType::kCounter,
      "Ejections enforced by outlier detection.",
      [](const Row& r) { return r.health->ejections_enforced_total.load(kRelaxed); }, outlier);
  family(
      "sidecar_cluster_outlier_detection_ejections_overflow_total", MetricType::kCounter,
      "Ejections not enforced because of max_ejection_percent.",
      [](const Row& r) { return r.health->ejections_overflow.load(kRelaxed); }, outlier);
  w.family("sidecar_cluster_outlier_detection_ejections_detected_total", MetricType::kCounter,
           "Outliers detected, by detector (enforced or not).");
  for (const Row& r : rows) {
    if (!r.config->outlier_detection.enabled) continue;
    const std::pair<std::string_view, uint64_t> types[] = {
        {"consecutive_5xx", r.health->ejections_detected_consecutive_5xx.load(kRelaxed)},
        {"consecutive_gateway_failure",
         r.health->ejections_detected_consecutive_gateway_failure.load(kRelaxed)},
        {"consecutive_local_origin_failure",
         r.health->ejections_detected_consecutive_local_origin_failure.load(kRelaxed)},
        {"success_rate", r.health->ejections_detected_success_rate.load(kRelaxed)},
        {"failure_percentage", r.health->ejections_detected_failure_percentage.load(kRelaxed)},
    };
    for (const auto& [type, value] : types) {
      const stats::Label labels[] = {{"cluster", r.config->name}, {"type", type}};
      w.sample(labels, static_cast<double>(value));
    }
  }
  family(
      "sidecar_cluster_dns_resolutions_total", MetricType::kCounter,
      "DNS resolutions of the cluster's host names (DNS discovery).",
      [](const Row& r) { return r.health->dns_resolutions.load(kRelaxed); }, dns);
  family(
      "sidecar_cluster_dns_failures_total", MetricType::kCounter,
      "DNS resolutions that failed (the last answer was kept).",
      [](const Row& r) { return r.health->dns_failures.load(kRelaxed); }, dns);
  family(
      "sidecar_cluster_dns_updates_total", MetricType::kCounter,
      "DNS answers that changed the endpoint set.",
      [](const Row& r) { return r.health->dns_updates.load(kRelaxed); }, dns);
}

void append_endpoint_health_json(std::string& b, const config::Cluster& cluster,
                                 const std::string& address) {
  ClusterHealth& ch = HealthRegistry::instance().cluster(cluster.name);
  const std::shared_ptr<EndpointHealth> ep = ch.endpoint(address);
  const EndpointHealth& h = *ep;
  b += fmt::format(",\"healthy\":{}", h.healthy());
  if (h.degraded_active_hc.load(kRelaxed)) b += ",\"degraded\":true";
  if (!cluster.health_checks.empty()) {
    const bool pending = h.pending_active_hc.load(kRelaxed);
    const bool failed = h.failed_active_hc.load(kRelaxed);
    b += fmt::format(
        ",\"health_check\":{{\"state\":\"{}\",\"successes\":{},\"failures\":{},"
        "\"consecutive_successes\":{},\"consecutive_failures\":{}",
        pending  ? "pending"
        : failed ? "unhealthy"
                 : "healthy",
        h.hc_successes.load(kRelaxed), h.hc_failures.load(kRelaxed),
        h.hc_consecutive_successes.load(kRelaxed), h.hc_consecutive_failures.load(kRelaxed));
    if (const int64_t last = h.hc_last_check_unix_ms.load(kRelaxed); last > 0) {
      b += fmt::format(",\"last_check\":\"{}\"", iso8601_ms(last));
    }
    b += '}';
  }
  if (cluster.outlier_detection.enabled) {
    const bool ejected = h.ejected.load(kRelaxed);
    b += fmt::format(
        ",\"outlier\":{{\"ejected\":{},\"ejections_total\":{},\"ejection_multiplier\":{},"
        "\"consecutive_5xx\":{},\"consecutive_gateway_failure\":{},"
        "\"consecutive_local_origin_failure\":{}",
        ejected, h.ejections_total.load(kRelaxed), h.ejection_multiplier.load(kRelaxed),
        h.consecutive_5xx.load(kRelaxed), h.consecutive_gateway_failure.load(kRelaxed),
        h.consecutive_local_origin_failure.load(kRelaxed));
    if (const int64_t until = h.ejected_until_unix_ms.load(kRelaxed); ejected && until > 0) {
      b += fmt::format(",\"ejected_until\":\"{}\"", iso8601_ms(until));
    }
    b += '}';
  }
  if (const int64_t sr = h.success_rate_milli.load(kRelaxed); sr >= 0) {
    b += fmt::format(",\"success_rate\":{:.3f}", static_cast<double>(sr) / 1000.0);
  }
}

void append_cluster_health_json(std::string& b, const config::Cluster& cluster) {
  ClusterHealth& ch = HealthRegistry::instance().cluster(cluster.name);
  if (cluster.discovery.dns.enabled) {
    b += fmt::format(",\"dns\":{{\"resolutions\":{},\"failures\":{},\"updates\":{}}}",
                     ch.dns_resolutions.load(kRelaxed), ch.dns_failures.load(kRelaxed),
                     ch.dns_updates.load(kRelaxed));
  }
  if (cluster.outlier_detection.enabled) {
    b += fmt::format(",\"outlier_detection\":{{\"ejections_total\":{},\"ejections_overflow\":{}}}",
                     ch.ejections_enforced_total.load(kRelaxed),
                     ch.ejections_overflow.load(kRelaxed));
  }
}

}  // namespace sidecar::upstream
