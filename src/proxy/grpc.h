// gRPC over HTTP/2 as the proxy sees it: recognizing a call, its deadline,
// and the gRPC status of the proxy's own HTTP errors. Pure functions, any
// thread. Source: gRPC's "gRPC over HTTP2" (PROTOCOL-HTTP2.md) and
// "HTTP to gRPC Status Code Mapping".
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http1_parser.h"

namespace sidecar::proxy {

// A gRPC request (content-type application/grpc, +proto, +json...; not
// application/grpc-web, which is HTTP/1-compatible framing of its own).
bool is_grpc(const http::RequestHead& r);

// The request's grpc-timeout (up to 8 digits and a unit H, M, S, m, u, n),
// rounded up to whole milliseconds; zero when absent or malformed.
std::chrono::milliseconds grpc_timeout(const http::RequestHead& r);

// The gRPC status code (0-16) for an HTTP status the proxy answers with
// itself: 503 -> 14 UNAVAILABLE, 504 -> 4 DEADLINE_EXCEEDED, ...
int grpc_status_for(int http_status);

// A grpc-status value (0-16, decimal), or -1 when it is not one.
int parse_grpc_status(std::string_view value);
// The grpc-status field of a head (a Trailers-Only response), or -1.
int grpc_status_of(const http::MessageHead& head);
// The grpc-status among trailer fields (names in lower case), or -1.
int grpc_status_of(const std::vector<std::pair<std::string, std::string>>& trailers);

}  // namespace sidecar::proxy
