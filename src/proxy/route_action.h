// What a route does to a request besides choosing a cluster (docs/config.md
// "routes[]"): path and host rewrites of the request sent upstream, and the
// answers of redirect and direct_response routes. Envoy's RouteAction
// rewrites and RedirectAction/DirectResponseAction, with their meaning.
//
// Pure functions of the route config and the request, no allocation beyond
// the strings they return; thread-safe (RE2 is).
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "http/filter.h"

namespace sidecar::upstream {
class Endpoint;
}

namespace sidecar::proxy {

// The origin-form path sent upstream after the route's prefix_rewrite or
// regex_rewrite of `path` ("/api/x?q=1", query kept), in `out`. False (and
// `out` untouched) when the route rewrites nothing or the path no longer
// has the matched prefix (a filter changed it).
bool rewrite_path(const config::Route& route, std::string_view path, std::string& out);

// The Location of a redirect route [RFC 9110 10.2.2] for a request with
// `authority` (Host, port included) and `path` (origin-form, query
// included), received over TLS or not. Ports: port_redirect sets one;
// host_redirect drops the request's; a scheme change drops it too (it
// belonged to the other scheme); the scheme's default port is never written.
std::string redirect_location(const config::Route& route, const config::Redirect& redirect,
                              bool tls, std::string_view authority, std::string_view path);

// The answer of a redirect or direct_response route (empty body for a
// redirect, as Envoy). Only for routes with one of them.
http::LocalResponse route_answer(const config::Route& route, bool tls, std::string_view authority,
                                 std::string_view path);

// The authority auto_host_rewrite sends: the endpoint's configured host name
// ("users.example"), with its port unless it is the scheme's default.
std::string endpoint_authority(const upstream::Endpoint& endpoint, bool tls);

}  // namespace sidecar::proxy
