// The sync module (libsidecar-sync.so): every entry of `sync:`, its admin
// endpoints (GET and POST /sync), metrics and readiness.
#include <signal.h>

#include <fmt/format.h>

#include "core/json.h"
#include "module/module.h"
#include "stats/metric_writer.h"
#include "sync/syncer.h"

namespace sidecar::sync {
namespace {

class SyncModule final : public module::Module {
 public:
  SyncModule(const Section& section, module::Host& host) {
    for (const SyncConfig& s : section.syncs) syncers_.push_back(std::make_unique<Syncer>(s, host));
  }

  const std::string& key() const override { return key_; }

  void start() override {
    for (auto& s : syncers_) s->start();
  }

  bool ready() const override {
    for (const auto& s : syncers_) {
      if (!s->ready()) return false;
    }
    return true;
  }

  Once once() const override {
    bool any = false, all_done = true, all_ok = true;
    for (const auto& s : syncers_) {
      if (!s->config().once) continue;
      any = true;
      const SyncStatus st = s->status();
      all_done = all_done && st.done_once;
      all_ok = all_ok && st.consecutive_failures == 0 && !st.revision.empty();
    }
    if (!any) return Once::kNo;
    if (!all_done) return Once::kRunning;
    return all_ok ? Once::kSucceeded : Once::kFailed;
  }

  void stop(std::chrono::steady_clock::time_point) override { syncers_.clear(); }

  void on_signal(int sig) override {
    if (sig != SIGUSR2) return;
    for (auto& s : syncers_) s->trigger();
  }

  std::string status_json() const override {
    std::string b = "{\"syncs\":[";
    for (size_t i = 0; i < syncers_.size(); ++i) {
      const SyncStatus st = syncers_[i]->status();
      if (i > 0) b += ',';
      b += "{\"name\":";
      core::append_json_string(b, st.name);
      b += ",\"revision\":";
      core::append_json_string(b, st.revision);
      b += ",\"last_error\":";
      core::append_json_string(b, st.last_error);
      b += fmt::format(
          ",\"last_success_time\":{},\"successes\":{},\"unchanged\":{},\"failures\":{},"
          "\"consecutive_failures\":{},\"ready\":{}}}",
          st.last_success_time, st.successes, st.unchanged, st.failures, st.consecutive_failures,
          st.ready ? "true" : "false");
    }
    b += "]}";
    return b;
  }

  std::vector<module::AdminRoute> admin_routes() override {
    return {{"POST", "/sync", [this](const module::AdminRequest& req, module::AdminResponse& r) {
               const std::string_view q = req.query;
               const std::string name = q.starts_with("name=") ? std::string(q.substr(5)) : "";
               size_t n = 0;
               for (auto& s : syncers_) {
                 if (!name.empty() && s->config().name != name) continue;
                 s->trigger();
                 ++n;
               }
               if (n == 0) {
                 r.status = 404;
                 r.body = "no such sync\n";
                 return;
               }
               r.body = fmt::format("syncing {}\n", name.empty() ? "all" : name);
             }}};
  }

  void collect(stats::MetricWriter& w) const override {
    using stats::MetricType;
    std::vector<SyncStatus> all;
    for (const auto& s : syncers_) all.push_back(s->status());
    w.family("sidecar_sync_total", MetricType::kCounter,
             "Syncs by result: success (a new revision is live), unchanged, failure.");
    for (const auto& st : all) {
      for (const auto& [result, n] :
           {std::pair<std::string_view, uint64_t>{"success", st.successes},
            {"unchanged", st.unchanged},
            {"failure", st.failures}}) {
        const stats::Label labels[] = {{"name", st.name}, {"result", result}};
        w.sample(labels, static_cast<double>(n));
      }
    }
    w.family("sidecar_sync_duration_seconds", MetricType::kHistogram,
             "Time of one sync: asking the source, fetching, writing, switching, hooks.");
    for (size_t i = 0; i < syncers_.size(); ++i) {
      const stats::Histogram& h = syncers_[i]->durations();
      uint64_t buckets[stats::kBuckets + 1];
      for (size_t b = 0; b <= stats::kBuckets; ++b) buckets[b] = h.bucket(b);
      const stats::Label labels[] = {{"name", all[i].name}};
      w.histogram(labels, stats::kBucketSeconds, buckets, stats::kBuckets,
                  static_cast<double>(h.sum_ns()) / 1e9, h.count());
    }
    w.family("sidecar_sync_revision_info", MetricType::kGauge, "The live revision, as a label.");
    for (const auto& st : all) {
      if (st.revision.empty()) continue;
      const stats::Label labels[] = {{"name", st.name}, {"revision", st.revision}};
      w.sample(labels, 1);
    }
    w.family("sidecar_sync_last_success_timestamp_seconds", MetricType::kGauge,
             "When the last sync succeeded (a new revision or an unchanged source).");
    for (const auto& st : all) {
      const stats::Label labels[] = {{"name", st.name}};
      w.sample(labels, st.last_success_time);
    }
    w.family("sidecar_sync_consecutive_failures", MetricType::kGauge,
             "Failed syncs since the last success.");
    for (const auto& st : all) {
      const stats::Label labels[] = {{"name", st.name}};
      w.sample(labels, st.consecutive_failures);
    }
  }

 private:
  const std::string key_ = "sync";
  std::vector<std::unique_ptr<Syncer>> syncers_;
};

}  // namespace
}  // namespace sidecar::sync

extern "C" __attribute__((visibility("default"))) sidecar::module::Module* sidecar_module_create(
    const sidecar::config::Section& section, sidecar::module::Host& host) {
  return new sidecar::sync::SyncModule(
      *std::static_pointer_cast<const sidecar::sync::Section>(section.typed), host);
}
