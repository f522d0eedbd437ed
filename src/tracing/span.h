// A finished span as the data path hands it to the exporter, and the bounded
// queue between them.
//
// SpanSink: many producers (the workers, at the end of a sampled request),
// one consumer (the exporter thread). A push is a short critical section
// (one move into a preallocated vector); when the queue holds `capacity`
// spans the new ones are dropped and counted, never waited for: a slow or
// absent collector must not slow traffic. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tracing/context.h"

namespace sidecar::tracing {

// OpenTelemetry's span kinds (trace.proto SpanKind values).
enum class SpanKind : uint8_t { kServer = 2, kClient = 3 };

struct Attribute {
  std::string key;
  std::string string_value;  // when !is_int
  int64_t int_value = 0;
  bool is_int = false;
};

struct SpanRecord {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // all zero: a root span
  std::string tracestate;
  std::string name;
  SpanKind kind = SpanKind::kServer;
  uint64_t start_unix_ns = 0;
  uint64_t end_unix_ns = 0;
  bool error = false;  // OTel status ERROR (else UNSET)
  std::string status_message;
  std::vector<Attribute> attributes;
  // Zipkin's endpoints: the sidecar's service name and the peer's address.
  std::string remote_ip;
  uint16_t remote_port = 0;

  void add(std::string key, std::string value) {
    attributes.push_back({std::move(key), std::move(value), 0, false});
  }
  void add(std::string key, int64_t value) {
    attributes.push_back({std::move(key), {}, value, true});
  }
};

class SpanSink {
 public:
  // `capacity`: spans queued at most; `batch`: a queue this long wakes the consumer.
  SpanSink(size_t capacity, size_t batch) : capacity_(capacity), batch_(batch) {
    queue_.reserve(capacity);
  }

  // Queues `span` or drops it (counted) when full.
  void push(SpanRecord&& span) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= capacity_) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_.push_back(std::move(span));
      wake = queue_.size() == batch_;
    }
    queued_.fetch_add(1, std::memory_order_relaxed);
    if (wake) cv_.notify_one();
  }

  // The consumer: waits until `batch` spans are queued, `timeout` passed or
  // stop() was called, then takes up to `batch` of them (in queue order).
  // Returns false once stopped and empty.
  bool take(std::vector<SpanRecord>& out, std::chrono::milliseconds timeout) {
    out.clear();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return stopped_ || queue_.size() >= batch_; });
    const size_t n = std::min(queue_.size(), batch_);
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(std::move(queue_[i]));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    return !(stopped_ && out.empty());
  }

  // take() stops waiting; what is queued can still be taken.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  const size_t batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SpanRecord> queue_;
  bool stopped_ = false;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> queued_{0};
};

}  // namespace sidecar::tracing
