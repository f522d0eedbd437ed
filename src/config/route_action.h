// Parsers of a route's rewrites and answers (docs/config.md "routes[]"):
// prefix_rewrite, regex_rewrite, host_rewrite, auto_host_rewrite, redirect
// and direct_response, with Envoy's names and meaning.
#pragma once

#include <string>

#include "config/reader.h"

namespace sidecar::config {

// Reads prefix_rewrite, regex_rewrite, host_rewrite, auto_host_rewrite,
// redirect and direct_response from the route map `n` into `route`, and checks that
// the route has exactly one of cluster, redirect, direct_response (`cluster`
// already read). Errors are FILE:LINE:COL, recorded in `r`.
void load_route_action(Reader& r, const YAML::Node& n, const std::string& where, Route& route);

}  // namespace sidecar::config
