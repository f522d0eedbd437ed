// Outlier detection (passive health checking), Envoy's algorithm
// (envoy.config.cluster.v3.OutlierDetection, arch_overview/upstream/outlier):
//
//   - consecutive_5xx: that many 5xx in a row (connect failures and resets
//     count as 503, timeouts as 504 unless split_external_local_origin_errors)
//     eject the endpoint, enforced with probability enforcing_consecutive_5xx %.
//     A detection resets its count (ejected or not), as Envoy does.
//   - consecutive_gateway_failure: 502/503/504 in a row (enforcing default 0:
//     detected and counted, not ejected, as in Envoy).
//   - consecutive_local_origin_failure: with split_external_local_origin_errors,
//     connect failures/resets/timeouts in a row.
//   - success rate, every `interval`: among endpoints with at least
//     success_rate_request_volume requests in the interval, when there are
//     at least success_rate_minimum_hosts of them, those below
//     mean - stdev * success_rate_stdev_factor / 1000 are ejected.
//   - failure percentage, every `interval` (enforcing default 0).
//   - An ejection lasts base_ejection_time * multiplier (capped at
//     max_ejection_time); the multiplier grows with each ejection and shrinks
//     by one per interval the endpoint spends not ejected. Ejections end on
//     the interval tick after their time. No ejection may take the ejected
//     share of the cluster above max_ejection_percent (always_eject_one_host
//     lets the first through).
//
// Thread safety: record() runs on workers (atomics; the cluster mutex only
// when it ejects); on_interval() on the health thread.
#pragma once

#include <cstdint>
#include <functional>

#include "config/health_config.h"
#include "upstream/attempt.h"
#include "upstream/health.h"

namespace sidecar::upstream::outlier {

// A number in [0, 100) for the enforcing_* percentages; tests pass their own.
using Roll = std::function<uint32_t()>;
uint32_t default_roll();

// One attempt's result on `ep`.
void record(EndpointHealth& ep, const config::OutlierDetection& c, const AttemptOutcome& o,
            HealthClock::time_point now, const Roll& roll = default_roll);

// The interval tick: ends ejections whose time is up, shrinks multipliers,
// runs the success-rate and failure-percentage passes, resets the window.
void on_interval(ClusterHealth& cluster, const config::OutlierDetection& c,
                 HealthClock::time_point now, const Roll& roll = default_roll);

}  // namespace sidecar::upstream::outlier
