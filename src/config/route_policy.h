// Parsers of a route's resilience keys: `retry_policy` and
// `request_mirror_policies` (docs/resilience.md). Errors are FILE:LINE:COL.
#pragma once

#include <string>

#include "config/reader.h"

namespace sidecar::config {

void load_retry_policy(Reader& r, const YAML::Node& n, const std::string& where, RetryPolicy& out);
// The `retry_on` names of RetryPolicy::On bits, in a fixed order.
std::vector<std::string> retry_on_names(uint32_t bits);
// `c` names the clusters a mirror may point at.
void load_mirror_policies(Reader& r, const YAML::Node& n, const std::string& where, const Config& c,
                          std::vector<MirrorPolicy>& out);

}  // namespace sidecar::config
