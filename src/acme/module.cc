// The ACME module (libsidecar-acme.so): the certificate manager, GET /acme,
// POST /acme/renew, and its metrics.
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "acme/manager.h"
#include "core/json.h"
#include "module/module.h"
#include "stats/metric_writer.h"

namespace sidecar::acme {
namespace {

std::string rfc3339(double seconds) {
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void append_time(std::string& b, double seconds) {
  if (seconds <= 0) {
    b += "null";
  } else {
    b += '"';
    b += rfc3339(seconds);
    b += '"';
  }
}

// Counters of managers replaced by a reload, so that metrics only grow.
struct Totals {
  uint64_t issuances = 0, issuance_failures = 0, renewals = 0, renewal_failures = 0,
           rate_limited = 0;
  void add(const AcmeStatus& s) {
    issuances += s.issuances;
    issuance_failures += s.issuance_failures;
    renewals += s.renewals;
    renewal_failures += s.renewal_failures;
    rate_limited += s.rate_limited;
  }
};

class AcmeModule final : public module::Module {
 public:
  AcmeModule(const AcmeConfig& config, module::Host& host)
      : host_(host), manager_(std::make_unique<Manager>(config, host)) {}

  const std::string& key() const override { return key_; }

  void start() override { manager_->start(); }

  // Serving the certificate does not wait for ACME: an HTTP-01 challenge
  // reaches a pod only through a Service that routes to ready pods.
  bool ready() const override { return true; }

  bool reload(const config::Section& section) override {
    const auto& next = *std::static_pointer_cast<const AcmeConfig>(section.typed);
    if (next == manager_->config()) return true;
    manager_->stop();
    totals_.add(manager_->status());
    manager_ = std::make_unique<Manager>(next, host_);
    manager_->start();
    spdlog::info("acme: settings reloaded");
    return true;
  }

  void stop(std::chrono::steady_clock::time_point) override { manager_->stop(); }

  std::string status_json() const override {
    const AcmeStatus s = manager_->status();
    const AcmeConfig& c = manager_->config();
    std::string b = "{\"state\":";
    core::append_json_string(b, s.state);
    b += ",\"directory\":";
    core::append_json_string(b, c.directory);
    b += ",\"domains\":[";
    for (size_t i = 0; i < c.domains.size(); ++i) {
      if (i > 0) b += ',';
      core::append_json_string(b, c.domains[i]);
    }
    b += "],\"listener\":";
    core::append_json_string(b, c.listener);
    b += ",\"storage\":";
    core::append_json_string(b, c.storage);
    b += ",\"account\":{\"url\":";
    core::append_json_string(b, s.account_url);
    b += fmt::format(",\"registered\":{}}}", s.account_registered ? "true" : "false");
    b += ",\"order\":";
    core::append_json_string(b, s.order_url);
    b += ",\"certificate\":";
    if (s.serial.empty()) {
      b += "null";
    } else {
      b += "{\"serial\":";
      core::append_json_string(b, s.serial);
      b += ",\"not_before\":";
      append_time(b, static_cast<double>(s.not_before));
      b += ",\"not_after\":";
      append_time(b, static_cast<double>(s.not_after));
      b += ",\"path\":";
      core::append_json_string(b, s.certificate_path);
      b += ",\"from\":";
      core::append_json_string(b, s.certificate_from);
      b += '}';
    }
    b += ",\"next_renewal\":";
    append_time(b, s.next_renewal);
    b += ",\"next_attempt\":";
    append_time(b, s.next_attempt);
    b += ",\"last_success\":";
    append_time(b, s.last_success_time);
    b += ",\"last_error\":";
    core::append_json_string(b, s.last_error);
    b += fmt::format(
        ",\"issuances\":{},\"issuance_failures\":{},\"renewals\":{},\"renewal_failures\":{},"
        "\"rate_limited\":{},\"consecutive_failures\":{}}}",
        totals_.issuances + s.issuances, totals_.issuance_failures + s.issuance_failures,
        totals_.renewals + s.renewals, totals_.renewal_failures + s.renewal_failures,
        totals_.rate_limited + s.rate_limited, s.consecutive_failures);
    return b;
  }

  std::vector<module::AdminRoute> admin_routes() override {
    return {{"POST", "/acme/renew", [this](const module::AdminRequest&, module::AdminResponse& r) {
               manager_->renew_now();
               r.body = "renewing (the server's Retry-After still applies)\n";
             }}};
  }

  void collect(stats::MetricWriter& w) const override {
    using stats::MetricType;
    const AcmeStatus s = manager_->status();
    w.family("sidecar_acme_attempts_total", MetricType::kCounter,
             "ACME attempts by kind (issuance: no certificate yet; renewal) and result.");
    const std::pair<const char*, uint64_t> samples[][2] = {
        {{"success", totals_.issuances + s.issuances},
         {"failure", totals_.issuance_failures + s.issuance_failures}},
        {{"success", totals_.renewals + s.renewals},
         {"failure", totals_.renewal_failures + s.renewal_failures}}};
    for (int k = 0; k < 2; ++k) {
      for (const auto& [result, n] : samples[k]) {
        const stats::Label labels[] = {{"kind", k == 0 ? "issuance" : "renewal"},
                                       {"result", result}};
        w.sample(labels, static_cast<double>(n));
      }
    }
    w.family("sidecar_acme_rate_limited_total", MetricType::kCounter,
             "ACME answers that were rate limits (HTTP 429 or rateLimited).");
    w.sample({}, static_cast<double>(totals_.rate_limited + s.rate_limited));
    w.family("sidecar_acme_consecutive_failures", MetricType::kGauge,
             "Failed ACME attempts since the last success.");
    w.sample({}, s.consecutive_failures);
    w.family("sidecar_acme_next_renewal_timestamp_seconds", MetricType::kGauge,
             "When the ACME certificate is renewed next (seconds since the epoch; 0: none yet).");
    w.sample({}, s.next_renewal);
  }

 private:
  const std::string key_ = "acme";
  module::Host& host_;
  std::unique_ptr<Manager> manager_;
  Totals totals_;
};

}  // namespace
}  // namespace sidecar::acme

extern "C" __attribute__((visibility("default"))) sidecar::module::Module* sidecar_module_create(
    const sidecar::config::Section& section, sidecar::module::Host& host) {
  return new sidecar::acme::AcmeModule(
      *std::static_pointer_cast<const sidecar::acme::AcmeConfig>(section.typed), host);
}
