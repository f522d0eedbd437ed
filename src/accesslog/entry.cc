#include "accesslog/entry.h"

#include <cstring>
#include <string>

namespace sidecar::accesslog {
namespace {

struct Fixed {
  int64_t start_time_us;
  uint64_t duration_us, upstream_us, bytes_received, bytes_sent;
  uint32_t flags;
  uint16_t status;
  uint8_t version_minor;
  uint8_t request_headers;
  uint8_t response_headers;
  uint8_t attempt_count;
  int8_t grpc_status;
};

constexpr size_t kStrings = 14;

void put_string(char*& p, std::string_view s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  std::memcpy(p, &n, sizeof(n));
  p += sizeof(n);
  if (n > 0) std::memcpy(p, s.data(), n);
  p += n;
}

bool get_string(const char*& p, const char* end, std::string_view& s) {
  uint32_t n = 0;
  if (end - p < static_cast<ptrdiff_t>(sizeof(n))) return false;
  std::memcpy(&n, p, sizeof(n));
  p += sizeof(n);
  if (end - p < static_cast<ptrdiff_t>(n)) return false;
  s = std::string_view(p, n);
  p += n;
  return true;
}

}  // namespace

void append_flags(std::string& out, uint32_t flags) {
  static constexpr std::pair<uint32_t, std::string_view> kCodes[] = {
      {kUpstreamConnectionFailure, "UF"},
      {kUpstreamRequestTimeout, "UT"},
      {kUpstreamConnectionTermination, "UC"},
      {kDownstreamConnectionTermination, "DC"},
      {kNoRouteFound, "NR"},
      {kStreamIdleTimeout, "SI"},
      {kDownstreamProtocolError, "DPE"},
      {kUpstreamProtocolError, "UPE"},
      {kRateLimited, "RL"},
      {kLocalReset, "LR"},
      {kDelayInjected, "DI"},
      {kFaultInjected, "FI"},
      {kNoHealthyUpstream, "UH"},
      {kUpstreamOverflow, "UO"},
      {kUpstreamRetryLimitExceeded, "URX"},
  };
  if (flags == 0) {
    out += '-';
    return;
  }
  bool first = true;
  for (const auto& [bit, code] : kCodes) {
    if ((flags & bit) == 0) continue;
    if (!first) out += ',';
    first = false;
    out.append(code);
  }
}

size_t encoded_size(const Entry& e) {
  size_t n = sizeof(Fixed) + 4 * (kStrings + e.request_headers.size() + e.response_headers.size());
  for (std::string_view s :
       {e.method, e.path, e.authority, e.upstream_host, e.route, e.cluster, e.listener,
        e.remote_address, e.tls_version, e.peer_subject, e.peer_uri_san, e.requested_server_name,
        e.response_code_details, e.trace_id}) {
    n += s.size();
  }
  for (std::string_view s : e.request_headers) n += s.size();
  for (std::string_view s : e.response_headers) n += s.size();
  return n;
}

void encode(const Entry& e, char* out) {
  Fixed f{e.start_time_us,
          e.duration_us,
          e.upstream_us,
          e.bytes_received,
          e.bytes_sent,
          e.flags,
          e.status,
          e.version_minor,
          static_cast<uint8_t>(e.request_headers.size()),
          static_cast<uint8_t>(e.response_headers.size()),
          e.attempt_count,
          e.grpc_status};
  std::memcpy(out, &f, sizeof(f));
  char* p = out + sizeof(f);
  for (std::string_view s :
       {e.method, e.path, e.authority, e.upstream_host, e.route, e.cluster, e.listener,
        e.remote_address, e.tls_version, e.peer_subject, e.peer_uri_san, e.requested_server_name,
        e.response_code_details, e.trace_id}) {
    put_string(p, s);
  }
  for (std::string_view s : e.request_headers) put_string(p, s);
  for (std::string_view s : e.response_headers) put_string(p, s);
}

bool decode(const char* data, size_t size, Entry& e) {
  Fixed f;
  if (size < sizeof(f)) return false;
  std::memcpy(&f, data, sizeof(f));
  e.start_time_us = f.start_time_us;
  e.duration_us = f.duration_us;
  e.upstream_us = f.upstream_us;
  e.bytes_received = f.bytes_received;
  e.bytes_sent = f.bytes_sent;
  e.flags = f.flags;
  e.status = f.status;
  e.version_minor = f.version_minor;
  e.attempt_count = f.attempt_count;
  e.grpc_status = f.grpc_status;
  const char* p = data + sizeof(f);
  const char* end = data + size;
  std::string_view* strings[] = {&e.method,
                                 &e.path,
                                 &e.authority,
                                 &e.upstream_host,
                                 &e.route,
                                 &e.cluster,
                                 &e.listener,
                                 &e.remote_address,
                                 &e.tls_version,
                                 &e.peer_subject,
                                 &e.peer_uri_san,
                                 &e.requested_server_name,
                                 &e.response_code_details,
                                 &e.trace_id};
  for (std::string_view* s : strings) {
    if (!get_string(p, end, *s)) return false;
  }
  e.request_headers.resize(f.request_headers);
  for (auto& s : e.request_headers) {
    if (!get_string(p, end, s)) return false;
  }
  e.response_headers.resize(f.response_headers);
  for (auto& s : e.response_headers) {
    if (!get_string(p, end, s)) return false;
  }
  return p == end;
}

}  // namespace sidecar::accesslog
