#include "config/access_log_format.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <iterator>

#include <fmt/format.h>

namespace sidecar::config {
namespace {

struct Simple {
  std::string_view name;
  LogToken::Kind kind;
};
constexpr Simple kSimple[] = {
    {"START_TIME", LogToken::Kind::kStartTime},
    {"PROTOCOL", LogToken::Kind::kProtocol},
    {"RESPONSE_CODE", LogToken::Kind::kResponseCode},
    {"RESPONSE_FLAGS", LogToken::Kind::kResponseFlags},
    {"BYTES_RECEIVED", LogToken::Kind::kBytesReceived},
    {"BYTES_SENT", LogToken::Kind::kBytesSent},
    {"DURATION", LogToken::Kind::kDuration},
    {"UPSTREAM_SERVICE_TIME", LogToken::Kind::kUpstreamServiceTime},
    {"UPSTREAM_HOST", LogToken::Kind::kUpstreamHost},
    {"UPSTREAM_CLUSTER", LogToken::Kind::kUpstreamCluster},
    {"ROUTE_NAME", LogToken::Kind::kRouteName},
    {"LISTENER_NAME", LogToken::Kind::kListenerName},
    {"DOWNSTREAM_REMOTE_ADDRESS", LogToken::Kind::kDownstreamRemoteAddress},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", LogToken::Kind::kDownstreamRemoteAddressWithoutPort},
    {"DOWNSTREAM_TLS_VERSION", LogToken::Kind::kDownstreamTlsVersion},
    {"DOWNSTREAM_PEER_SUBJECT", LogToken::Kind::kDownstreamPeerSubject},
    {"DOWNSTREAM_PEER_URI_SAN", LogToken::Kind::kDownstreamPeerUriSan},
    {"REQUESTED_SERVER_NAME", LogToken::Kind::kRequestedServerName},
    {"RESPONSE_CODE_DETAILS", LogToken::Kind::kResponseCodeDetails},
    {"TRACE_ID", LogToken::Kind::kTraceId},
    {"UPSTREAM_REQUEST_ATTEMPT_COUNT", LogToken::Kind::kUpstreamRequestAttemptCount},
    {"GRPC_STATUS", LogToken::Kind::kGrpcStatus},
    {"GRPC_STATUS_NUMBER", LogToken::Kind::kGrpcStatusNumber},
    {"HOSTNAME", LogToken::Kind::kHostname},
};

}  // namespace

std::string_view log_operator_name(LogToken::Kind kind) {
  for (const Simple& s : kSimple)
    if (s.kind == kind) return s.name;
  return {};
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; });
  return out;
}

// REQ(...) / RESP(...) arguments: "NAME", "NAME?ALT", with an optional ":N" after.
bool parse_header_operator(std::string_view body, bool request, LogToken& t, std::string& error) {
  const size_t open = body.find('(');
  const size_t close = body.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    error = "expected %REQ(NAME)% or %RESP(NAME)%";
    return false;
  }
  std::string_view arg = body.substr(open + 1, close - open - 1);
  std::string_view rest = body.substr(close + 1);
  if (!rest.empty()) {
    if (rest[0] != ':') {
      error = "unexpected text after )";
      return false;
    }
    size_t n = 0;
    auto [p, ec] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), n);
    if (ec != std::errc() || p != rest.data() + rest.size() || n == 0) {
      error = "expected a length after ':'";
      return false;
    }
    t.max_length = n;
  }
  std::string_view name = arg, alt;
  if (const size_t q = arg.find('?'); q != std::string_view::npos) {
    name = arg.substr(0, q);
    alt = arg.substr(q + 1);
  }
  if (name.empty()) {
    error = "empty header name";
    return false;
  }
  t.kind = request ? LogToken::Kind::kRequestHeader : LogToken::Kind::kResponseHeader;
  if (request && name[0] == ':') {
    const std::string pseudo = lower(name);
    if (pseudo == ":method") {
      t.kind = LogToken::Kind::kMethod;
    } else if (pseudo == ":path") {
      t.kind = LogToken::Kind::kPath;
    } else if (pseudo == ":authority") {
      t.kind = LogToken::Kind::kAuthority;
    } else if (pseudo == ":scheme") {
      t.kind = LogToken::Kind::kScheme;
    } else {
      error =
          "unknown pseudo-header " + std::string(name) + " (:METHOD, :PATH, :AUTHORITY, :SCHEME)";
      return false;
    }
    return true;
  }
  t.text = lower(name);
  t.fallback = lower(alt);
  return true;
}

}  // namespace

std::optional<std::vector<LogToken>> parse_log_format(std::string_view format, std::string& error,
                                                      size_t& offset) {
  std::vector<LogToken> tokens;
  size_t i = 0;
  while (i < format.size()) {
    const size_t pct = format.find('%', i);
    if (pct == std::string_view::npos) {
      tokens.push_back({LogToken::Kind::kLiteral, std::string(format.substr(i)), "", 0});
      break;
    }
    if (pct > i)
      tokens.push_back({LogToken::Kind::kLiteral, std::string(format.substr(i, pct - i)), "", 0});
    if (pct + 1 < format.size() && format[pct + 1] == '%') {
      // "%%": a literal percent sign (Envoy's escape).
      if (!tokens.empty() && tokens.back().kind == LogToken::Kind::kLiteral) {
        tokens.back().text += '%';
      } else {
        tokens.push_back({LogToken::Kind::kLiteral, "%", "", 0});
      }
      i = pct + 2;
      continue;
    }
    const size_t end = format.find('%', pct + 1);
    if (end == std::string_view::npos) {
      error = "unterminated % operator";
      offset = pct;
      return std::nullopt;
    }
    const std::string_view body = format.substr(pct + 1, end - pct - 1);
    LogToken t;
    bool known = false;
    for (const Simple& s : kSimple) {
      if (body == s.name) {
        t.kind = s.kind;
        known = true;
        break;
      }
    }
    if (!known) {
      if (body.starts_with("REQ(") || body.starts_with("RESP(")) {
        if (!parse_header_operator(body, body[2] == 'Q', t, error)) {
          offset = pct;
          return std::nullopt;
        }
      } else if (body.starts_with("GRPC_STATUS(") && body.ends_with(")")) {
        const std::string_view form = body.substr(12, body.size() - 13);
        if (form == "NUMBER") {
          t.kind = LogToken::Kind::kGrpcStatusNumber;
        } else if (form == "CAMEL_STRING" || form == "SNAKE_STRING") {
          t.kind = LogToken::Kind::kGrpcStatus;
          if (form == "SNAKE_STRING") t.text = "SNAKE_STRING";
        } else {
          error = "%GRPC_STATUS(...)% takes CAMEL_STRING, SNAKE_STRING or NUMBER";
          offset = pct;
          return std::nullopt;
        }
      } else {
        error = "unknown operator %" + std::string(body) + "%";
        offset = pct;
        return std::nullopt;
      }
    }
    tokens.push_back(std::move(t));
    i = end + 1;
  }
  return tokens;
}

std::vector<LogField> default_log_fields() {
  static const std::pair<std::string_view, std::string_view> kDefaults[] = {
      {"start_time", "%START_TIME%"},
      {"method", "%REQ(:METHOD)%"},
      {"path", "%REQ(:PATH)%"},
      {"protocol", "%PROTOCOL%"},
      {"response_code", "%RESPONSE_CODE%"},
      {"response_flags", "%RESPONSE_FLAGS%"},
      {"bytes_received", "%BYTES_RECEIVED%"},
      {"bytes_sent", "%BYTES_SENT%"},
      {"duration", "%DURATION%"},
      {"upstream_service_time", "%UPSTREAM_SERVICE_TIME%"},
      {"upstream_host", "%UPSTREAM_HOST%"},
      {"request_id", "%REQ(X-REQUEST-ID)%"},
      {"user_agent", "%REQ(USER-AGENT)%"},
      {"x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"},
      {"authority", "%REQ(:AUTHORITY)%"},
      {"downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"},
      {"route_name", "%ROUTE_NAME%"},
      {"upstream_cluster", "%UPSTREAM_CLUSTER%"},
      {"trace_id", "%TRACE_ID%"},
  };
  std::vector<LogField> fields;
  for (const auto& [key, format] : kDefaults) {
    std::string error;
    size_t offset = 0;
    fields.push_back({std::string(key), *parse_log_format(format, error, offset)});
  }
  return fields;
}

void append_start_time(std::string& out, int64_t unix_us) {
  const time_t secs = static_cast<time_t>(unix_us / 1'000'000);
  tm t{};
  gmtime_r(&secs, &t);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                 t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                 (unix_us / 1000) % 1000);
}

const std::string& host_name() {
  static const std::string name = [] {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) != 0) return std::string();
    return std::string(host);
  }();
  return name;
}

}  // namespace sidecar::config
