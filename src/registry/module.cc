// The registry module (libsidecar-registry.so): registration of this app
// (registrar.h) and discovery of other services for clusters with
// `discovery.etcd` (discoverer.h), GET /registry and the metrics.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/json.h"
#include "module/module.h"
#include "registry/discoverer.h"
#include "registry/registrar.h"
#include "stats/metric_writer.h"

namespace sidecar::registry {
namespace {

using Clock = std::chrono::steady_clock;

class RegistryModule final : public module::Module {
 public:
  RegistryModule(const RegistryConfig& config, module::Host& host) : config_(config), host_(host) {}

  ~RegistryModule() override {
    if (!stopped_) stop(Clock::now() + std::chrono::seconds(1));
  }

  const std::string& key() const override { return key_; }

  void start() override {
    const auto cfg = host_.config();
    if (config_.register_service) {
      std::string why;
      ServiceSettings s = with_defaults(config_.service, *cfg, why);
      if (!why.empty()) {
        spdlog::error("registry: not registering: {}", why);
        error_ = why;
      } else {
        registrar_ = std::make_unique<Registrar>(config_.etcd, s, host_);
        registrar_->start();
      }
    }
    for (const config::Cluster& c : cfg->clusters) {
      if (c.discovery.etcd_service.empty()) continue;
      discoverers_.push_back(std::make_unique<Discoverer>(config_.etcd, c, host_));
      discoverers_.back()->start();
    }
  }

  // Registration follows readiness, it does not gate it.
  bool ready() const override { return true; }

  // Step 1 of shutdown: callers stop being sent here before the app stops.
  void on_shutdown() override {
    if (registrar_) {
      registrar_->deregister(
          std::min<std::chrono::milliseconds>(config_.etcd.timeout, std::chrono::seconds(2)) +
          std::chrono::seconds(1));
    }
  }

  void stop(Clock::time_point deadline) override {
    stopped_ = true;
    if (registrar_) registrar_->stop(deadline);
    for (auto& d : discoverers_) d->stop(deadline);
  }

  std::string status_json() const override {
    std::string b = "{\"etcd\":{\"endpoints\":[";
    for (size_t i = 0; i < config_.etcd.endpoints.size(); ++i) {
      if (i > 0) b += ',';
      core::append_json_string(b, config_.etcd.endpoints[i]);
    }
    b += "],\"prefix\":";
    core::append_json_string(b, config_.etcd.prefix);
    b += fmt::format(",\"ttl_seconds\":{}}}", config_.etcd.ttl.count() / 1000.0);
    b += ",\"registration\":";
    if (registrar_) {
      const RegistrarStatus s = registrar_->status();
      b += "{\"state\":";
      core::append_json_string(b, s.state);
      b += fmt::format(",\"registered\":{},\"key\":", s.registered);
      core::append_json_string(b, s.key);
      b += ",\"value\":";
      core::append_json_string(b, s.value);
      b += fmt::format(
          ",\"lease_id\":\"{:x}\",\"lease_ttl_left_seconds\":{:.1f},\"registrations\":{},"
          "\"reregistrations\":{},\"deregistrations\":{},\"keepalive_failures\":{},"
          "\"key_restores\":{},\"authentications\":{},\"etcd_endpoint\":",
          s.lease_id, s.ttl_left_seconds, s.registrations, s.reregistrations, s.deregistrations,
          s.keepalive_failures, s.key_restores, s.authentications);
      core::append_json_string(b, s.endpoint);
      b += ",\"last_error\":";
      core::append_json_string(b, s.last_error);
      b += '}';
    } else if (!error_.empty()) {
      b += "{\"state\":\"error\",\"last_error\":";
      core::append_json_string(b, error_);
      b += '}';
    } else {
      b += "null";
    }
    b += ",\"discovery\":[";
    for (size_t i = 0; i < discoverers_.size(); ++i) {
      const DiscoveryStatus s = discoverers_[i]->status();
      if (i > 0) b += ',';
      b += "{\"cluster\":";
      core::append_json_string(b, s.cluster);
      b += ",\"service\":";
      core::append_json_string(b, s.service);
      b += ",\"endpoints\":[";
      for (size_t e = 0; e < s.endpoints.size(); ++e) {
        if (e > 0) b += ',';
        core::append_json_string(b, s.endpoints[e]);
      }
      b += fmt::format(
          "],\"revision\":{},\"watching\":{},\"stale_seconds\":{:.1f},\"updates\":{},"
          "\"full_reads\":{},\"last_error\":",
          s.revision, s.watching, s.stale_seconds, s.updates, s.full_reads);
      core::append_json_string(b, s.last_error);
      b += '}';
    }
    b += "]}";
    return b;
  }

  void collect(stats::MetricWriter& w) const override {
    using stats::MetricType;
    if (registrar_) {
      const RegistrarStatus s = registrar_->status();
      w.family("sidecar_registry_registered", MetricType::kGauge,
               "1 while this app is registered in etcd.");
      w.sample({}, s.registered ? 1 : 0);
      w.family("sidecar_registry_lease_ttl_seconds", MetricType::kGauge,
               "Time left on the registration's lease, as of the last keepalive.");
      w.sample({}, s.ttl_left_seconds);
      w.family("sidecar_registry_registrations_total", MetricType::kCounter,
               "Registrations (a lease granted and the key put).");
      w.sample({}, double(s.registrations));
      w.family("sidecar_registry_reregistrations_total", MetricType::kCounter,
               "Registrations made again after the lease was lost.");
      w.sample({}, double(s.reregistrations));
      w.family("sidecar_registry_deregistrations_total", MetricType::kCounter,
               "Leases revoked (readiness lost, or shutdown).");
      w.sample({}, double(s.deregistrations));
      w.family("sidecar_registry_keepalive_failures_total", MetricType::kCounter,
               "Lease keepalives that failed (retried with backoff).");
      w.sample({}, double(s.keepalive_failures));
      w.family("sidecar_registry_key_restores_total", MetricType::kCounter,
               "Times the own key was found deleted by someone else and put back.");
      w.sample({}, double(s.key_restores));
      w.family("sidecar_registry_etcd_endpoint_info", MetricType::kGauge,
               "The etcd endpoint in use for registration, as a label.");
      const stats::Label labels[] = {{"endpoint", s.endpoint}};
      w.sample(labels, 1);
    }
    if (discoverers_.empty()) return;
    std::vector<DiscoveryStatus> all;
    for (const auto& d : discoverers_) all.push_back(d->status());
    w.family("sidecar_registry_discovered_endpoints", MetricType::kGauge,
             "Endpoints of a discovered cluster, as published to the workers.");
    for (const auto& s : all) {
      const stats::Label labels[] = {{"cluster", s.cluster}};
      w.sample(labels, double(s.endpoints.size()));
    }
    w.family("sidecar_registry_discovery_stale_seconds", MetricType::kGauge,
             "Seconds since etcd was last heard from for a discovered cluster (0 while watching).");
    for (const auto& s : all) {
      const stats::Label labels[] = {{"cluster", s.cluster}};
      w.sample(labels, s.stale_seconds);
    }
    w.family("sidecar_registry_discovery_updates_total", MetricType::kCounter,
             "Endpoint sets published for a discovered cluster.");
    for (const auto& s : all) {
      const stats::Label labels[] = {{"cluster", s.cluster}};
      w.sample(labels, double(s.updates));
    }
  }

 private:
  const std::string key_ = "registry";
  const RegistryConfig config_;
  module::Host& host_;
  std::unique_ptr<Registrar> registrar_;
  std::vector<std::unique_ptr<Discoverer>> discoverers_;
  std::string error_;
  bool stopped_ = false;
};

}  // namespace
}  // namespace sidecar::registry

extern "C" __attribute__((visibility("default"))) sidecar::module::Module* sidecar_module_create(
    const sidecar::config::Section& section, sidecar::module::Host& host) {
  return new sidecar::registry::RegistryModule(
      *std::static_pointer_cast<const sidecar::registry::RegistryConfig>(section.typed), host);
}
