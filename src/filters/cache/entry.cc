#include "filters/cache/entry.h"

#include <algorithm>
#include <cctype>
#include <chrono>

namespace sidecar::filters::cache {
namespace {

// Statuses a cache may store without being told they are cacheable
// [RFC 9110 15.1]; others are not stored at all.
bool cacheable_status(uint16_t s) {
  switch (s) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

bool hop_by_hop_or_ours(std::string_view n) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive",  "proxy-connection", "transfer-encoding",
      "upgrade",    "te",          "trailer",          "content-length",
      "age",        "cache-status"};
  for (std::string_view k : kNames) {
    if (http::iequals(n, k)) return true;
  }
  return false;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Comma-separated field names of Vary (lower case); false for "*".
bool vary_names(const http::ResponseHead& r, std::vector<std::string>& out) {
  for (const http::HeaderField& f : r.headers) {
    if (!http::iequals(f.name, "vary")) continue;
    std::string_view v = f.value;
    while (!v.empty()) {
      const size_t comma = v.find(',');
      std::string_view item = v.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (item == "*") return false;
      if (!item.empty()) {
        std::string name = lower(item);
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
      }
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return true;
}

}  // namespace

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CacheControl cache_control_of(const http::MessageHead& head) {
  CacheControl cc;
  bool any = false;
  for (const http::HeaderField& f : head.headers) {
    if (http::iequals(f.name, "cache-control")) {
      parse_cache_control(f.value, cc);
      any = true;
    }
  }
  if (!any) {
    for (const http::HeaderField& f : head.headers) {
      if (http::iequals(f.name, "pragma") && f.value.find("no-cache") != std::string_view::npos) {
        cc.no_cache = true;
      }
    }
  }
  return cc;
}

int64_t freshness_lifetime(const CacheControl& cc, const http::ResponseHead& response,
                           int64_t date) {
  if (cc.s_maxage >= 0) return cc.s_maxage;
  if (cc.max_age >= 0) return cc.max_age;
  if (const http::HeaderField* e = response.find("expires")) {
    // An invalid Expires (as "0") means already expired [RFC 9111 5.3].
    const auto expires = parse_http_date(e->value);
    return expires ? std::max<int64_t>(0, *expires - date) : 0;
  }
  return -1;
}

const char* not_storable(const http::ResponseHead& r, const CacheControl& cc,
                         bool request_has_authorization, const CacheControl& request_cc) {
  if (request_cc.no_store) return "request no-store";
  if (!cacheable_status(r.status)) return "status";
  if (cc.no_store) return "no-store";
  if (cc.private_) return "private";
  if (cc.no_cache) return "no-cache";  // would need revalidation on every use
  if (request_has_authorization && !cc.public_ && cc.s_maxage < 0 && !cc.must_revalidate) {
    return "authorization";
  }
  if (r.find("set-cookie") != nullptr) return "set-cookie";
  return "";
}

StoreDecision storable(const http::ResponseHead& r, const CacheControl& cc, bool get,
                       bool request_has_authorization, const CacheControl& request_cc,
                       uint64_t max_object_size, int64_t now) {
  StoreDecision d;
  d.date = now;
  d.why_not = get ? not_storable(r, cc, request_has_authorization, request_cc) : "head";
  if (*d.why_not == '\0' && !vary_names(r, d.vary)) d.why_not = "vary";
  if (*d.why_not == '\0') {
    if (const http::HeaderField* f = r.find("date")) {
      if (auto v = parse_http_date(f->value)) d.date = *v;
    }
    d.lifetime = freshness_lifetime(cc, r, d.date);
    if (d.lifetime <= 0) d.why_not = "not fresh";
  }
  if (*d.why_not == '\0' && r.has_content_length && r.content_length > max_object_size) {
    d.why_not = "too large";
  }
  return d;
}

std::shared_ptr<Entry> make_entry(
    const http::ResponseHead& r, const CacheControl& cc, const StoreDecision& d,
    const std::function<std::string_view(const std::string&)>& request_field, int64_t now,
    int64_t request_time) {
  auto e = std::make_shared<Entry>();
  e->status = r.status;
  for (const http::HeaderField& f : r.headers) {
    if (hop_by_hop_or_ours(f.name)) continue;
    e->headers.emplace_back(lower(f.name), std::string(f.value));
  }
  for (const std::string& name : d.vary) {
    std::string_view v = request_field(name);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    e->vary.emplace_back(name, std::string(v));
  }
  // RFC 9111 4.2.3.
  int64_t age_value = 0;
  if (const http::HeaderField* a = r.find("age")) {
    CacheControl tmp;  // reuse the delta-seconds reading
    parse_cache_control("max-age=" + std::string(a->value), tmp);
    age_value = std::max<int64_t>(0, tmp.max_age);
  }
  const int64_t apparent_age = std::max<int64_t>(0, now - d.date);
  const int64_t corrected_age_value = age_value + (now - request_time);
  e->response_time = now;
  e->corrected_initial_age = std::max(apparent_age, corrected_age_value);
  e->freshness_lifetime = d.lifetime;
  e->must_revalidate = cc.must_revalidate || cc.proxy_revalidate;
  e->stale_if_error = cc.stale_if_error;
  e->stale_while_revalidate = cc.stale_while_revalidate;
  return e;
}

std::shared_ptr<Entry> refreshed(const Entry& stale, const http::ResponseHead& response,
                                 int64_t now, int64_t request_time) {
  auto e = std::make_shared<Entry>(stale);
  // The 304's fields replace the stored ones of the same names.
  std::vector<std::string> names;
  Fields fresh_fields;
  for (const http::HeaderField& f : response.headers) {
    if (hop_by_hop_or_ours(f.name)) continue;
    std::string name = lower(f.name);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    fresh_fields.emplace_back(std::move(name), std::string(f.value));
  }
  std::erase_if(e->headers, [&](const auto& h) {
    return std::find(names.begin(), names.end(), h.first) != names.end();
  });
  for (auto& f : fresh_fields) e->headers.push_back(std::move(f));
  // Freshness from the merged fields.
  CacheControl cc;
  int64_t date = now;
  const std::string* expires = nullptr;
  for (const auto& [name, value] : e->headers) {
    if (name == "cache-control") parse_cache_control(value, cc);
    if (name == "date") {
      if (auto d = parse_http_date(value)) date = *d;
    }
    if (name == "expires") expires = &value;
  }
  int64_t lifetime = 0;
  if (cc.s_maxage >= 0) {
    lifetime = cc.s_maxage;
  } else if (cc.max_age >= 0) {
    lifetime = cc.max_age;
  } else if (expires != nullptr) {
    const auto x = parse_http_date(*expires);
    lifetime = x ? std::max<int64_t>(0, *x - date) : 0;
  }
  e->response_time = now;
  e->corrected_initial_age = std::max<int64_t>(0, std::max(now - date, now - request_time));
  e->freshness_lifetime = lifetime;
  e->must_revalidate = cc.must_revalidate || cc.proxy_revalidate;
  e->stale_if_error = cc.stale_if_error;
  e->stale_while_revalidate = cc.stale_while_revalidate;
  return e;
}

}  // namespace sidecar::filters::cache
