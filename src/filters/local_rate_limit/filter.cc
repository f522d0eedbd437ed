#include "filters/local_rate_limit/filter.h"

#include <fmt/format.h>

#include "accesslog/entry.h"

namespace sidecar::filters::local_rate_limit {
namespace {

uint64_t ceil_seconds(std::chrono::nanoseconds d) {
  const auto s = (d.count() + 999'999'999) / 1'000'000'000;
  return s < 1 ? 1 : static_cast<uint64_t>(s);
}

// RateLimit-Policy and RateLimit [draft-ietf-httpapi-ratelimit-headers-09
// section 3 and 4]: quota `q` per window `w` seconds; `r` remaining, `t`
// seconds until the quota resets.
std::string policy_field(const Descriptor& d) {
  return fmt::format("\"{}\";q={};w={}", d.name, d.bucket.tokens_per_fill,
                     ceil_seconds(d.bucket.fill_interval));
}

std::string state_field(const Descriptor& d, const TakeResult& r) {
  return fmt::format("\"{}\";r={};t={}", d.name, r.remaining, ceil_seconds(r.reset));
}

}  // namespace

std::string_view client_ip(const http::RequestHead& head, std::string_view peer,
                           uint32_t trusted_hops) {
  if (trusted_hops == 0) return peer;
  // Every X-Forwarded-For line, as one list, right to left.
  std::vector<std::string_view> hops;
  for (const auto& f : head.headers) {
    if (http::iequals(f.name, "x-forwarded-for"))
      http::for_each_token(f.value, [&](std::string_view t) { hops.push_back(t); });
  }
  if (hops.size() < trusted_hops) return peer;
  return hops[hops.size() - trusted_hops];
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  const Config* c = config_.get();
  if (const void* route = cb.route_config("local_rate_limit"))
    c = static_cast<const Config*>(route);
  const std::string_view path = cb.path();
  const auto now = Clock::now();
  const Descriptor* limited_by = nullptr;
  TakeResult limited_result;
  const Descriptor* tightest = nullptr;  // for rate_limit_headers: the fewest tokens left
  TakeResult tightest_result;
  for (const Descriptor& d : c->descriptors) {
    if (!path.starts_with(d.prefix)) continue;
    TakeResult r;
    switch (d.key.kind) {
      case DescriptorKey::Kind::kNone:
        r = d.buckets->take(now);
        break;
      case DescriptorKey::Kind::kClientIp:
        r = d.buckets->take(client_ip(cb.request(), cb.peer_ip(), c->xff_num_trusted_hops), now);
        break;
      case DescriptorKey::Kind::kHeader: {
        const http::HeaderField* f = cb.request().find(d.key.header);
        if (f == nullptr) continue;  // no value, no descriptor (as Envoy)
        r = d.buckets->take(f->value, now);
        break;
      }
      case DescriptorKey::Kind::kPath:
        r = d.buckets->take(path.substr(0, path.find('?')), now);
        break;
    }
    if (!r.allowed && limited_by == nullptr) {
      limited_by = &d;
      limited_result = r;
    }
    if (tightest == nullptr || r.remaining < tightest_result.remaining) {
      tightest = &d;
      tightest_result = r;
    }
  }
  if (tightest == nullptr) return http::FilterStatus::kContinue;  // nothing applies
  if (limited_by == nullptr) {
    allowed_.get(cb.listener_name(), cb.route_name())->add(1);
    if (c->rate_limit_headers) {
      headers_ = policy_field(*tightest);
      headers_ += '\n';
      headers_ += state_field(*tightest, tightest_result);
    }
    return http::FilterStatus::kContinue;
  }
  limited_.get(cb.listener_name(), cb.route_name())->add(1);
  http::LocalResponse reply;
  reply.status = static_cast<int>(c->status);
  reply.headers = {{"content-type", "text/plain"},
                   {"retry-after", std::to_string(ceil_seconds(limited_result.reset))},
                   {"ratelimit-policy", policy_field(*limited_by)},
                   {"ratelimit", state_field(*limited_by, limited_result)}};
  reply.body = "local_rate_limited\n";
  cb.set_response_flag(accesslog::kRateLimited);
  cb.set_response_detail("local_rate_limited");
  cb.send_response(std::move(reply));
  return http::FilterStatus::kStopIteration;
}

void Filter::on_response_headers(const http::ResponseHead&, http::FilterCallbacks& cb) {
  if (headers_.empty()) return;
  const size_t nl = headers_.find('\n');
  cb.add_response_header("ratelimit-policy", std::string_view(headers_).substr(0, nl));
  cb.add_response_header("ratelimit", std::string_view(headers_).substr(nl + 1));
  headers_.clear();
}

}  // namespace sidecar::filters::local_rate_limit
