// Access log formats: Envoy's command operators (%START_TIME%,
// %REQ(USER-AGENT)%, %RESPONSE_CODE%, ...) parsed once, at config load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidecar::config {

struct LogToken {
  enum class Kind : uint8_t {
    kLiteral,
    kStartTime,      // %START_TIME%: RFC 3339, UTC, milliseconds
    kMethod,         // %REQ(:METHOD)%
    kPath,           // %REQ(:PATH)%: the request target as received
    kAuthority,      // %REQ(:AUTHORITY)%: Host, or the absolute-form authority
    kScheme,         // %REQ(:SCHEME)%
    kRequestHeader,  // %REQ(NAME)% (first value; as forwarded for X-Request-Id and X-Forwarded-For)
    kResponseHeader,           // %RESP(NAME)%
    kProtocol,                 // %PROTOCOL%: HTTP/1.1 or HTTP/1.0
    kResponseCode,             // %RESPONSE_CODE%: 0 when no response was sent
    kResponseFlags,            // %RESPONSE_FLAGS%: Envoy's short codes, "-" for none
    kBytesReceived,            // %BYTES_RECEIVED%: request body bytes
    kBytesSent,                // %BYTES_SENT%: response body bytes
    kDuration,                 // %DURATION%: milliseconds, first request byte to last response byte
    kUpstreamServiceTime,      // %UPSTREAM_SERVICE_TIME%: milliseconds spent upstream
    kUpstreamHost,             // %UPSTREAM_HOST%
    kUpstreamCluster,          // %UPSTREAM_CLUSTER%
    kRouteName,                // %ROUTE_NAME%
    kListenerName,             // %LISTENER_NAME%
    kDownstreamRemoteAddress,  // %DOWNSTREAM_REMOTE_ADDRESS%: ip:port
    kDownstreamRemoteAddressWithoutPort,  // %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%
    kDownstreamTlsVersion,                // %DOWNSTREAM_TLS_VERSION%: TLSv1.3; "" on plain TCP
    kDownstreamPeerSubject,               // %DOWNSTREAM_PEER_SUBJECT%: client certificate subject
    kDownstreamPeerUriSan,  // %DOWNSTREAM_PEER_URI_SAN%: its URI SANs, comma separated
    kRequestedServerName,   // %REQUESTED_SERVER_NAME%: the SNI
    kResponseCodeDetails,   // %RESPONSE_CODE_DETAILS%: why the proxy answered so
    kTraceId,               // %TRACE_ID%: the request's trace id (32 hex); "" without tracing
    kUpstreamRequestAttemptCount,  // %UPSTREAM_REQUEST_ATTEMPT_COUNT%: retries and hedges included
    // %GRPC_STATUS%, %GRPC_STATUS(CAMEL_STRING|SNAKE_STRING|NUMBER)% (Envoy's):
    // a gRPC call's status, from grpc-status or mapped from the HTTP status;
    // `text` is the form ("" = CAMEL_STRING: "Ok", "FailedPrecondition").
    kGrpcStatus,
    kGrpcStatusNumber,  // %GRPC_STATUS_NUMBER%: the same as a number
    kHostname,          // %HOSTNAME%: this machine's host name (gethostname), read once
  };
  Kind kind = Kind::kLiteral;
  std::string text;       // the literal, or the header name in lower case
  std::string fallback;   // %REQ(A?B)%: header B when A is absent
  size_t max_length = 0;  // %REQ(A):N%: at most N bytes; 0 = no limit
  bool operator==(const LogToken&) const = default;
};

// One JSON key and the template of its value, or (text format) the line.
struct LogField {
  std::string key;
  std::vector<LogToken> tokens;
  bool operator==(const LogField&) const = default;
};

// Parses a format string ("%%" is a literal '%', as in Envoy). On error, returns nothing and sets
// `error` and `offset` (the byte of `format` where the problem is).
std::optional<std::vector<LogToken>> parse_log_format(std::string_view format, std::string& error,
                                                      size_t& offset);

// The operator of a simple kind ("RESPONSE_CODE"); "" for literals and
// header operators, which carry arguments.
std::string_view log_operator_name(LogToken::Kind kind);

// The values two operators render to, the same for the access log and the
// headers filter: %START_TIME% in Envoy's default form (RFC 3339, UTC,
// milliseconds; `unix_us`: microseconds since the epoch) and %HOSTNAME%
// (gethostname(), read once; empty when it fails).
void append_start_time(std::string& out, int64_t unix_us);
const std::string& host_name();

// The fields of the default JSON line (see docs/config.md).
std::vector<LogField> default_log_fields();

}  // namespace sidecar::config
