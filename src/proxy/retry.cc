#include "proxy/retry.h"

#include <time.h>

#include <algorithm>
#include <string>

namespace sidecar::proxy {

using P = config::RetryPolicy;

bool retriable(const P& policy, AttemptFailure failure) {
  const uint32_t on = policy.retry_on;
  if ((on & P::k5xx) != 0) return true;
  switch (failure) {
    case AttemptFailure::kConnectFailure:
      return (on & (P::kGatewayError | P::kConnectFailure)) != 0;
    case AttemptFailure::kRefusedStream:
      return (on & (P::kReset | P::kRefusedStream)) != 0;
    case AttemptFailure::kReset:
      return (on & P::kReset) != 0;
    case AttemptFailure::kPerTryTimeout:
      return (on & (P::kGatewayError | P::kReset)) != 0;
  }
  return false;
}

bool retriable(const P& policy, int status) {
  const uint32_t on = policy.retry_on;
  if ((on & P::k5xx) != 0 && status >= 500 && status <= 599) return true;
  if ((on & P::kGatewayError) != 0 && (status == 502 || status == 503 || status == 504)) {
    return true;
  }
  if ((on & P::kRetriable4xx) != 0 && status == 409) return true;
  const auto& codes = policy.retriable_status_codes;
  return std::find(codes.begin(), codes.end(), status) != codes.end();
}

std::chrono::milliseconds retry_back_off(const P& policy, uint32_t retry, uint64_t random,
                                         std::optional<std::chrono::seconds> retry_after) {
  using std::chrono::milliseconds;
  const milliseconds max = policy.max_interval;
  if (retry_after) return std::min<milliseconds>(*retry_after, max);
  const uint32_t shift = std::min<uint32_t>(retry > 0 ? retry - 1 : 0, 30);
  const int64_t base = policy.base_interval.count();
  const int64_t ceiling = std::min<int64_t>(base << shift, max.count());
  if (ceiling <= 0) return milliseconds(0);
  return milliseconds(static_cast<int64_t>(random % static_cast<uint64_t>(ceiling)));
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, int64_t now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::seconds(999999999);  // far beyond any cap
    int64_t n = 0;
    for (char c : value) n = n * 10 + (c - '0');
    return std::chrono::seconds(n);
  }
  // IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT" [RFC 9110 5.6.7].
  const std::string s(value);
  struct tm tm = {};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const int64_t at = timegm(&tm);
  return std::chrono::seconds(std::max<int64_t>(at - now, 0));
}

}  // namespace sidecar::proxy
