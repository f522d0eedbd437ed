// The logs module (libsidecar-logs.so): the pipeline, its admin endpoint
// (GET /logs), metrics and readiness.
#include <spdlog/spdlog.h>

#include "logship/pipeline.h"
#include "module/module.h"

namespace sidecar::logship {
namespace {

class LogsModule final : public module::Module {
 public:
  LogsModule(const Section& section, module::Host& host)
      : pipeline_(std::make_shared<Pipeline>(section)) {
    if (pipeline_->wants_app_output()) {
      // The supervisor's thread may call this after the module is gone:
      // it holds the pipeline.
      host.subscribe_app_output([p = pipeline_](module::AppStream s, std::string_view data) {
        p->on_app_output(static_cast<int>(s), data);
      });
    }
  }

  const std::string& key() const override { return key_; }

  void start() override {
    started_ = pipeline_->start();
    if (!started_) spdlog::error("logs: not shipping (see above); /ready stays 503");
  }

  bool ready() const override { return started_ && pipeline_->ready(); }

  void stop(std::chrono::steady_clock::time_point deadline) override {
    if (started_) pipeline_->stop(deadline);
  }

  std::string status_json() const override {
    if (!started_) return "{\"error\":\"not started\"}";
    return pipeline_->status_json();
  }

  void collect(stats::MetricWriter& w) const override {
    if (started_) pipeline_->collect(w);
  }

 private:
  const std::string key_ = "logs";
  std::shared_ptr<Pipeline> pipeline_;
  bool started_ = false;
};

}  // namespace
}  // namespace sidecar::logship

extern "C" __attribute__((visibility("default"))) sidecar::module::Module* sidecar_module_create(
    const sidecar::config::Section& section, sidecar::module::Host& host) {
  return new sidecar::logship::LogsModule(
      *std::static_pointer_cast<const sidecar::logship::Section>(section.typed), host);
}
