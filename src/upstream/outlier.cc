#include "upstream/outlier.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/random.h"

namespace sidecar::upstream::outlier {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

void eject(EndpointHealth& ep, const config::OutlierDetection& c, uint32_t enforcing,
           HealthClock::time_point now, const Roll& roll) {
  if (enforcing == 0 || roll() >= enforcing) return;
  ep.cluster.try_eject(ep, now, c.base_ejection_time, c.max_ejection_time, c.max_ejection_percent,
                       c.always_eject_one_host);
}

bool is_gateway_error(int code) { return code == 502 || code == 503 || code == 504; }

}  // namespace

uint32_t default_roll() {
  thread_local core::Random random;
  return static_cast<uint32_t>(random.next() % 100);
}

void record(EndpointHealth& ep, const config::OutlierDetection& c, const AttemptOutcome& o,
            HealthClock::time_point now, const Roll& roll) {
  if (!c.enabled) return;
  const bool local = o.kind != AttemptOutcome::Kind::kResponse;
  if (c.split_external_local_origin_errors) {
    if (local) {
      if (ep.consecutive_local_origin_failure.fetch_add(1, kRelaxed) + 1 ==
          c.consecutive_local_origin_failure) {
        // Envoy resets the count on detection, ejected or not, so that the
        // next run of failures is detected too.
        ep.consecutive_local_origin_failure.store(0, kRelaxed);
        ep.cluster.ejections_detected_consecutive_local_origin_failure.fetch_add(1, kRelaxed);
        eject(ep, c, c.enforcing_consecutive_local_origin_failure, now, roll);
      }
      return;
    }
    ep.consecutive_local_origin_failure.store(0, kRelaxed);
  }
  // Without the split, a failure of our own is the status it turns into.
  const int code = !local ? o.status : o.kind == AttemptOutcome::Kind::kTimeout ? 504 : 503;
  ep.window_requests.fetch_add(1, kRelaxed);
  if (code < 500) {
    ep.window_successes.fetch_add(1, kRelaxed);
    ep.consecutive_5xx.store(0, kRelaxed);
    ep.consecutive_gateway_failure.store(0, kRelaxed);
    return;
  }
  if (is_gateway_error(code)) {
    if (ep.consecutive_gateway_failure.fetch_add(1, kRelaxed) + 1 ==
        c.consecutive_gateway_failure) {
      ep.consecutive_gateway_failure.store(0, kRelaxed);
      ep.cluster.ejections_detected_consecutive_gateway_failure.fetch_add(1, kRelaxed);
      eject(ep, c, c.enforcing_consecutive_gateway_failure, now, roll);
    }
  } else {
    ep.consecutive_gateway_failure.store(0, kRelaxed);
  }
  if (ep.consecutive_5xx.fetch_add(1, kRelaxed) + 1 == c.consecutive_5xx) {
    ep.consecutive_5xx.store(0, kRelaxed);
    ep.cluster.ejections_detected_consecutive_5xx.fetch_add(1, kRelaxed);
    eject(ep, c, c.enforcing_consecutive_5xx, now, roll);
  }
}

void on_interval(ClusterHealth& cluster, const config::OutlierDetection& c,
                 HealthClock::time_point now, const Roll& roll) {
  const auto members = cluster.members();
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  struct Sample {
    EndpointHealth* ep;
    uint64_t requests;
    double rate;  // percent of successes
  };
  std::vector<Sample> samples;
  for (const auto& ep : members) {
    if (ep->ejected.load(kRelaxed)) {
      if (now_ns >= ep->ejected_until_ns.load(kRelaxed)) ClusterHealth::uneject(*ep);
    } else if (const uint32_t m = ep->ejection_multiplier.load(kRelaxed); m > 0) {
      ep->ejection_multiplier.store(m - 1, kRelaxed);
    }
    const uint64_t requests = ep->window_requests.exchange(0, kRelaxed);
    const uint64_t successes = std::min(ep->window_successes.exchange(0, kRelaxed), requests);
    if (requests == 0) continue;
    const double rate = 100.0 * static_cast<double>(successes) / static_cast<double>(requests);
    ep->success_rate_milli.store(static_cast<int64_t>(std::llround(rate * 1000)), kRelaxed);
    if (!ep->ejected.load(kRelaxed)) samples.push_back({ep.get(), requests, rate});
  }

  // Success rate: Envoy's mean - factor * stdev over the hosts with volume.
  std::vector<const Sample*> volume;
  for (const Sample& s : samples) {
    if (s.requests >= c.success_rate_request_volume) volume.push_back(&s);
  }
  if (!volume.empty() && volume.size() >= c.success_rate_minimum_hosts) {
    double mean = 0;
    for (const Sample* s : volume) mean += s->rate;
    mean /= static_cast<double>(volume.size());
    double variance = 0;
    for (const Sample* s : volume) variance += (s->rate - mean) * (s->rate - mean);
    variance /= static_cast<double>(volume.size());
    const double threshold =
        mean - std::sqrt(variance) * (static_cast<double>(c.success_rate_stdev_factor) / 1000.0);
    for (const Sample* s : volume) {
      if (s->rate < threshold) {
        cluster.ejections_detected_success_rate.fetch_add(1, kRelaxed);
        eject(*s->ep, c, c.enforcing_success_rate, now, roll);
      }
    }
  }

  // Failure percentage: a fixed threshold over the hosts with volume.
  std::vector<const Sample*> fp;
  for (const Sample& s : samples) {
    if (s.requests >= c.failure_percentage_request_volume) fp.push_back(&s);
  }
  if (!fp.empty() && fp.size() >= c.failure_percentage_minimum_hosts) {
    for (const Sample* s : fp) {
      if (100.0 - s->rate >= static_cast<double>(c.failure_percentage_threshold)) {
        cluster.ejections_detected_failure_percentage.fetch_add(1, kRelaxed);
        eject(*s->ep, c, c.enforcing_failure_percentage, now, roll);
      }
    }
  }
}

}  // namespace sidecar::upstream::outlier
