// libsidecar-tracing.so: the export thread (exporter.h).
#include "tracing/exporter.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "tracing/config.h"
#include "tracing/encode.h"
#include "tracing/span.h"

namespace sidecar::tracing {
namespace {

using Clock = std::chrono::steady_clock;

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

class HttpExporter final : public Exporter {
 public:
  HttpExporter(const TracingConfig& config, SpanSink& sink) : config_(config), sink_(sink) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  ~HttpExporter() override {
    if (thread_.joinable()) {
      sink_.stop();
      thread_.join();
    }
  }

  void start() override {
    thread_ = std::thread([this] { run(); });
  }

  void stop(Clock::time_point deadline) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_deadline_ = deadline;
      stopping_ = true;
    }
    wake_.notify_all();
    sink_.stop();
    if (thread_.joinable()) thread_.join();
  }

  ExporterStats stats(bool zipkin) const override {
    std::lock_guard<std::mutex> lock(mu_);
    return zipkin ? zipkin_stats_ : otlp_stats_;
  }

 private:
  void run() {
    std::vector<SpanRecord> batch;
    CURL* curl = curl_easy_init();
    while (sink_.take(batch, config_.batch().batch_timeout)) {
      if (batch.empty()) continue;
      if (past_stop_deadline()) {
        // Out of time: what is left is counted, not sent.
        std::lock_guard<std::mutex> lock(mu_);
        if (config_.otlp.enabled) otlp_stats_.spans_failed += batch.size();
        if (config_.zipkin.enabled) zipkin_stats_.spans_failed += batch.size();
        continue;
      }
      if (config_.otlp.enabled) {
        send(curl, config_.otlp, false, encode_otlp(batch, config_.service_name),
             "application/x-protobuf", batch.size());
      }
      if (config_.zipkin.enabled) {
        send(curl, config_.zipkin, true, encode_zipkin(batch, config_.service_name),
             "application/json", batch.size());
      }
    }
    if (curl != nullptr) curl_easy_cleanup(curl);
  }

  bool past_stop_deadline() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_ && Clock::now() >= stop_deadline_;
  }

  // The time one request may take: its timeout, within the stop deadline.
  long request_timeout_ms(const ExporterConfig& e) {
    std::lock_guard<std::mutex> lock(mu_);
    auto t = std::chrono::duration_cast<std::chrono::milliseconds>(e.timeout);
    if (stopping_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(stop_deadline_ - Clock::now());
      t = std::min(t, left);
    }
    return std::max<long>(1, static_cast<long>(t.count()));
  }

  // POSTs `body`, retrying connection errors, 429 and 5xx with exponential
  // backoff (100 ms doubling, at most 5 s, never past the stop deadline).
  void send(CURL* curl, const ExporterConfig& e, bool zipkin, std::string body,
            const char* content_type, size_t spans) {
    if (curl == nullptr) return;
    if (e.gzip) body = gzip(body);
    struct curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, fmt::format("Content-Type: {}", content_type).c_str());
    if (e.gzip) headers = curl_slist_append(headers, "Content-Encoding: gzip");
    headers = curl_slist_append(headers, "Expect:");
    std::chrono::milliseconds backoff(100);
    std::string error;
    bool ok = false;
    for (uint32_t attempt = 0; attempt <= e.max_retries; ++attempt) {
      curl_easy_reset(curl);
      curl_easy_setopt(curl, CURLOPT_URL, e.endpoint.c_str());
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request_timeout_ms(e));
      curl_easy_setopt(curl, CURLOPT_USERAGENT, "sidecar");
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
      const CURLcode rc = curl_easy_perform(curl);
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      bool retryable = false;
      if (rc != CURLE_OK) {
        error = curl_easy_strerror(rc);
        retryable = true;
      } else if (status >= 200 && status < 300) {
        ok = true;
      } else {
        error = fmt::format("HTTP {}", status);
        retryable = status == 429 || status == 502 || status == 503 || status == 504;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        ExporterStats& s = zipkin ? zipkin_stats_ : otlp_stats_;
        ++s.requests;
        if (attempt > 0) ++s.retries;
      }
      if (ok || !retryable || attempt == e.max_retries) break;
      std::unique_lock<std::mutex> lock(mu_);
      const auto until =
          stopping_ ? std::min(stop_deadline_, Clock::now() + backoff) : Clock::now() + backoff;
      wake_.wait_until(lock, until, [&] { return stopping_ && Clock::now() >= stop_deadline_; });
      if (stopping_ && Clock::now() >= stop_deadline_) break;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
    curl_slist_free_all(headers);
    std::lock_guard<std::mutex> lock(mu_);
    ExporterStats& s = zipkin ? zipkin_stats_ : otlp_stats_;
    if (ok) {
      s.spans_exported += spans;
      s.last_error.clear();
    } else {
      s.spans_failed += spans;
      if (s.last_error != error) {
        spdlog::warn("tracing: {} export to {} failed: {}", zipkin ? "zipkin" : "otlp", e.endpoint,
                     error);
      }
      s.last_error = error;
    }
  }

  const TracingConfig& config_;
  SpanSink& sink_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  Clock::time_point stop_deadline_ = Clock::time_point::max();
  ExporterStats otlp_stats_, zipkin_stats_;
};

}  // namespace
}  // namespace sidecar::tracing

extern "C" __attribute__((visibility("default"))) sidecar::tracing::Exporter*
sidecar_tracing_exporter_create(const sidecar::tracing::TracingConfig* config,
                                sidecar::tracing::SpanSink* sink) {
  return new sidecar::tracing::HttpExporter(*config, *sink);
}
