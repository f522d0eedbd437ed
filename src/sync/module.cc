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
    for (const SyncConfig& s : section.syncs) syncers_.push_back(std::make_shared<Syncer>(s, host));
  }

  ~SyncModule() override {
    if (!stopped_) stop(std::chrono::steady_clock::now() + std::chrono::seconds(1));
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
      all_ok = all_ok && !st.once_failed;
    }
    if (!any) return Once::kNo;
    if (!all_done) return Once::kRunning;
    return all_ok ? Once::kSucceeded : Once::kFailed;
  }

  // Kills what runs (git, a hook), then waits for the threads until the
  // deadline; a thread still busy then is left (it owns what it uses).
  void stop(std::chrono::steady_clock::time_point deadline) override {
    stopped_ = true;
    for (auto& s : syncers_) s->request_stop();
    for (auto& s : syncers_) s->wait(deadline);
  }

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
          ",\"last_success_time\":{},\"successes\":{},\"unchanged\":{},\"repairs\":{},"
          "\"failures\":{},\"consecutive_failures\":{},\"git_max_rss_bytes\":{},\"ready\":{},"
          "\"hooks\":[",
          st.last_success_time, st.successes, st.unchanged, st.repairs, st.failures,
          st.consecutive_failures, st.git_max_rss_bytes, st.ready ? "true" : "false");
      for (size_t h = 0; h < st.hooks.size(); ++h) {
        const HookStatus& hs = st.hooks[h];
        if (h > 0) b += ',';
        b += "{\"kind\":";
        core::append_json_string(b, hs.kind);
        b += ",\"target\":";
        core::append_json_string(b, hs.target);
        b += ",\"notified\":";
        core::append_json_string(b, hs.notified);
        b += ",\"pending\":";
        core::append_json_string(b, hs.pending);
        b += ",\"last_error\":";
        core::append_json_string(b, hs.last_error);
        b += fmt::format(",\"successes\":{},\"failures\":{},\"consecutive_failures\":{}}}",
                         hs.successes, hs.failures, hs.consecutive_failures);
      }
      b += "]}";
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
             "Syncs by result: success (a new revision is live), unchanged, repaired (the live "
             "tree was missing and is back), failure.");
    for (const auto& st : all) {
      for (const auto& [result, n] :
           {std::pair<std::string_view, uint64_t>{"success", st.successes},
            {"unchanged", st.unchanged},
            {"repaired", st.repairs},
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
    w.family("sidecar_sync_git_max_resident_bytes", MetricType::kGauge,
             "The peak resident memory of the largest git command of the sync so far.");
    for (const auto& st : all) {
      if (st.git_max_rss_bytes == 0) continue;
      const stats::Label labels[] = {{"name", st.name}};
      w.sample(labels, static_cast<double>(st.git_max_rss_bytes));
    }
    w.family("sidecar_sync_hook_runs_total", MetricType::kCounter,
             "Hook attempts by result (a failed one is retried).");
    for (const auto& st : all) {
      for (size_t h = 0; h < st.hooks.size(); ++h) {
        const std::string index = std::to_string(h);
        for (const auto& [result, n] :
             {std::pair<std::string_view, uint64_t>{"success", st.hooks[h].successes},
              {"failure", st.hooks[h].failures}}) {
          const stats::Label labels[] = {
              {"name", st.name}, {"hook", index}, {"kind", st.hooks[h].kind}, {"result", result}};
          w.sample(labels, static_cast<double>(n));
        }
      }
    }
  }

 private:
  const std::string key_ = "sync";
  std::vector<std::shared_ptr<Syncer>> syncers_;
  bool stopped_ = false;
};

}  // namespace
}  // namespace sidecar::sync

extern "C" __attribute__((visibility("default"))) sidecar::module::Module* sidecar_module_create(
    const sidecar::config::Section& section, sidecar::module::Host& host) {
  return new sidecar::sync::SyncModule(
      *std::static_pointer_cast<const sidecar::sync::Section>(section.typed), host);
}
