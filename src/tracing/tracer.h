// The process's tracer: the `tracing:` config the data path reads and the
// queue its spans go to. Created by the tracing module (module.cc) when a
// config has `tracing:`; the workers find it with active_tracer().
//
// Lifetime: once published, a tracer lives until the process exits (a
// worker may read it at any time, without a lock), so it is never freed.
#pragma once

#include <memory>

#include "tracing/config.h"
#include "tracing/span.h"

namespace sidecar::tracing {

struct Tracer {
  explicit Tracer(std::shared_ptr<const TracingConfig> c)
      : config(std::move(c)), sink(config->max_queue_size, config->batch().max_batch) {}
  const std::shared_ptr<const TracingConfig> config;
  SpanSink sink;
};

// The published tracer, or null (no `tracing:`). Any thread.
Tracer* active_tracer();
// Publishes `tracer` (kept until exit) or stops tracing new requests (null).
void set_active_tracer(Tracer* tracer);

}  // namespace sidecar::tracing
