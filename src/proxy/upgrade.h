// HTTP/1.1 upgrades (RFC 9110 7.8) and WebSocket tunnels: which requests
// are upgrades, whether a route allows them, and the bits of RFC 6455 and
// RFC 8441 the codecs need to translate a WebSocket between HTTP/1.1 and
// HTTP/2. See docs/proxy.md "Upgrades and WebSocket".
//
// An upgrade is proxied as a request whose body and response body are both
// "until the connection closes": after the upstream's 101 the stream keeps
// pulling bytes in both directions (Stream::start_tunnel), so back-pressure,
// the idle timeout, drain, stats and the access log work as for any
// request. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/http1_parser.h"

namespace sidecar::core {
class Random;
}

namespace sidecar::proxy {

// The upgrade a request asks for: the value of its Upgrade field when its
// Connection field lists the "upgrade" token (RFC 9110 7.6.1, 7.8), else "".
// `h2c` is not an upgrade the proxy takes (RFC 9113 3.1 removed it): "" too,
// so the request is answered as HTTP/1.1 with Upgrade dropped as hop-by-hop.
std::string_view upgrade_type(const http::RequestHead& request);

// Whether `type` is one of `allowed` (route `upgrade`), case-insensitively.
bool upgrade_allowed(const std::vector<std::string>& allowed, std::string_view type);

// A random Sec-WebSocket-Key (RFC 6455 4.1: 16 random bytes, base64, 24
// characters), for an HTTP/1.1 handshake made from an RFC 8441 extended
// CONNECT, which carries none.
std::string websocket_key(core::Random& random);

}  // namespace sidecar::proxy
