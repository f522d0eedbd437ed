#include "proxy/grpc.h"

#include <algorithm>

namespace sidecar::proxy {

// A gRPC request (application/grpc, +proto, +json...).
bool is_grpc(const http::RequestHead& r) {
  const http::HeaderField* ct = r.find("content-type");
  return ct != nullptr && ct->value.substr(0, 16) == "application/grpc" &&
         ct->value.substr(0, 20) != "application/grpc-web";
}

// grpc-timeout: up to 8 digits and a unit (H, M, S, m, u, n) [gRPC over
// HTTP/2, "Requests"]; zero when absent or malformed.
std::chrono::milliseconds grpc_timeout(const http::RequestHead& r) {
  const http::HeaderField* f = r.find("grpc-timeout");
  if (f == nullptr || f->value.size() < 2 || f->value.size() > 9) return {};
  uint64_t n = 0;
  for (char c : f->value.substr(0, f->value.size() - 1)) {
    if (c < '0' || c > '9') return {};
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  using std::chrono::duration_cast;
  using ms = std::chrono::milliseconds;
  switch (f->value.back()) {
    case 'H':
      return duration_cast<ms>(std::chrono::hours(n));
    case 'M':
      return duration_cast<ms>(std::chrono::minutes(n));
    case 'S':
      return duration_cast<ms>(std::chrono::seconds(n));
    case 'm':
      return ms(std::max<uint64_t>(n, 1));
    case 'u':
      return ms(std::max<uint64_t>(n / 1000, 1));
    case 'n':
      return ms(std::max<uint64_t>(n / 1000000, 1));
    default:
      return {};
  }
}

// The gRPC status of a proxy's own HTTP error (gRPC's "HTTP to gRPC Status
// Code Mapping", and Envoy's for 504).
int grpc_status_for(int http_status) {
  switch (http_status) {
    case 400:
      return 13;  // INTERNAL
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
      return 14;  // UNAVAILABLE
    case 504:
    case 408:
      return 4;  // DEADLINE_EXCEEDED
    default:
      return 2;  // UNKNOWN
  }
}

int parse_grpc_status(std::string_view value) {
  if (value.empty() || value.size() > 2) return -1;
  int n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n <= 16 ? n : -1;
}

int grpc_status_of(const http::MessageHead& head) {
  const http::HeaderField* f = head.find("grpc-status");
  return f != nullptr ? parse_grpc_status(f->value) : -1;
}

int grpc_status_of(const std::vector<std::pair<std::string, std::string>>& trailers) {
  for (const auto& [name, value] : trailers) {
    if (name == "grpc-status") return parse_grpc_status(value);
  }
  return -1;
}

}  // namespace sidecar::proxy
