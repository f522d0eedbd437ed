// One access log entry, as the data path records it, and its compact binary
// encoding for the trip from a worker to the writer thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sidecar::accesslog {

// Envoy's response flags (the short codes of %RESPONSE_FLAGS%).
enum ResponseFlag : uint32_t {
  kUpstreamConnectionFailure = 1u << 0,        // UF
  kUpstreamRequestTimeout = 1u << 1,           // UT
  kUpstreamConnectionTermination = 1u << 2,    // UC
  kDownstreamConnectionTermination = 1u << 3,  // DC
  kNoRouteFound = 1u << 4,                     // NR
  kStreamIdleTimeout = 1u << 5,                // SI
  kDownstreamProtocolError = 1u << 6,          // DPE
  kUpstreamProtocolError = 1u << 7,            // UPE
  kRateLimited = 1u << 8,                      // RL
  kLocalReset = 1u << 9,                       // LR
  kDelayInjected = 1u << 10,                   // DI (the fault filter)
  kFaultInjected = 1u << 11,                   // FI (the fault filter)
  kNoHealthyUpstream = 1u << 12,               // UH
  kUpstreamOverflow = 1u << 13,                // UO (a circuit breaker was full)
  kUpstreamRetryLimitExceeded = 1u << 14,      // URX
};

// Appends the flags' short codes, comma separated, or "-" when none.
void append_flags(std::string& out, uint32_t flags);

struct Entry {
  static constexpr uint64_t kNone = UINT64_MAX;
  int64_t start_time_us = 0;  // since the Unix epoch
  uint64_t duration_us = kNone;
  uint64_t upstream_us = kNone;
  uint64_t bytes_received = 0;  // request body; TCP: bytes from the client
  uint64_t bytes_sent = 0;      // response body; TCP: bytes to the client
  uint32_t flags = 0;
  uint16_t status = 0;        // 0: no response was sent
  uint8_t version_minor = 1;  // 0, 1: HTTP/1.x; 2: HTTP/2
  uint8_t attempt_count = 0;  // upstream attempts (retries and hedges included); 0: none
  int8_t grpc_status = -1;    // a gRPC call's status (0-16); -1: not a call, or none
  // version_minor of a TCP proxy connection's entry: no protocol, no scheme.
  static constexpr uint8_t kNotHttp = 0xFF;
  std::string_view method, path, authority, upstream_host, route, cluster, listener, remote_address;
  // Downstream TLS ("" on plain connections).
  std::string_view tls_version, peer_subject, peer_uri_san, requested_server_name;
  std::string_view response_code_details;  // why the proxy answered as it did
  std::string_view trace_id;               // 32 hex characters; "" without tracing
  // Values of the configured request and response headers, in config order
  // (empty: absent).
  std::vector<std::string_view> request_headers;
  std::vector<std::string_view> response_headers;
};

// The size of `e` once encoded, in bytes.
size_t encoded_size(const Entry& e);
// Encodes `e` into `out` (encoded_size(e) bytes).
void encode(const Entry& e, char* out);
// Decodes what encode() wrote; the views point into `data`. False if corrupt.
bool decode(const char* data, size_t size, Entry& e);

}  // namespace sidecar::accesslog
