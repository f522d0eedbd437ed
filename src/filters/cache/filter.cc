#include "filters/cache/filter.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sidecar::filters::cache {
namespace {

constexpr const char* kRequests = "sidecar_cache_requests_total";
constexpr const char* kRequestsHelp =
    "Requests the cache filter saw, by result (hit, miss, stale, bypass, collapsed).";

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
    // HTTP/1.0's Pragma: no-cache, when there is no Cache-Control [RFC 9111 5.4].
    for (const http::HeaderField& f : head.headers) {
      if (http::iequals(f.name, "pragma") && f.value.find("no-cache") != std::string_view::npos) {
        cc.no_cache = true;
      }
    }
  }
  return cc;
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
        std::string name(item);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
      }
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return true;
}

}  // namespace

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

struct Filter::Wait {
  std::mutex mutex;
  boost::asio::io_context* io = nullptr;
  Filter* filter = nullptr;  // null once the filter stopped waiting
  std::unique_ptr<boost::asio::steady_timer> timer;
};

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      store(config->disabled ? nullptr : Store::instance(config->max_size)),
      hit(*counter(kRequests, kRequestsHelp, {{"result", "hit"}})),
      miss(*counter(kRequests, kRequestsHelp, {{"result", "miss"}})),
      stale(*counter(kRequests, kRequestsHelp, {{"result", "stale"}})),
      bypass(*counter(kRequests, kRequestsHelp, {{"result", "bypass"}})),
      collapsed(*counter(kRequests, kRequestsHelp, {{"result", "collapsed"}})),
      stored(*counter("sidecar_cache_stored_total", "Responses the cache filter stored.")) {}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

Filter::Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}

Filter::~Filter() { on_stream_end(); }

void Filter::on_stream_end() {
  if (wait_) {
    std::lock_guard lock(wait_->mutex);
    wait_->filter = nullptr;
    if (wait_->timer) wait_->timer->cancel();
  }
  wait_.reset();
  end_fill();
  state_ = State::kIdle;
  capturing_ = false;
  entry_.reset();
  stale_.reset();
  revalidating_ = false;
  cb_ = nullptr;
}

void Filter::end_fill() {
  if (leader_) {
    leader_ = false;
    factory_->store->end_fill(key_);
  }
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  state_ = State::kBypass;
  if (const auto* route = static_cast<const Config*>(cb.route_config("cache"));
      (route != nullptr && route->disabled) || !factory_->store) {
    return http::FilterStatus::kContinue;
  }
  const http::RequestHead& req = cb.request();
  key_.assign(cb.listener_name()).append(1, '\0');
  for (char c : cb.authority())
    key_ += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  key_.append(1, '\0').append(cb.path());
  if (req.method != http::Method::kGet && req.method != http::Method::kHead) {
    const std::string_view m = req.method_name;
    if (m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE") state_ = State::kUnsafe;
    return http::FilterStatus::kContinue;
  }
  cb_ = &cb;
  request_cc_ = cache_control_of(req);
  authorization_ = req.find("authorization") != nullptr;
  request_time_ = now_seconds();
  if (request_cc_.no_cache || request_cc_.no_store) {
    // The client wants the origin's answer.
    factory_->bypass.add();
    forward(cb, "request");
    return http::FilterStatus::kContinue;
  }
  if (serve_if_fresh(cb, false)) return http::FilterStatus::kStopIteration;
  if (request_cc_.only_if_cached) {
    cb.set_response_detail("cache_only_if_cached_miss");
    cb.send_local_reply(504, "cache: not in the cache (only-if-cached)\n");
    return http::FilterStatus::kStopIteration;
  }
  if (req.method == http::Method::kHead) {
    factory_->miss.add();
    forward(cb, reason_);
    return http::FilterStatus::kContinue;
  }
  // A miss: fill it, or wait for the fill in progress.
  auto w = std::make_shared<Wait>();
  w->io = &cb.io();
  w->filter = this;
  const bool leader = factory_->store->begin_fill(key_, [w] {
    std::lock_guard lock(w->mutex);
    if (w->filter == nullptr) return;
    boost::asio::post(*w->io, [w] {
      Filter* f = nullptr;
      {
        std::lock_guard lock(w->mutex);
        f = w->filter;
      }
      if (f != nullptr) f->wake();
    });
  });
  if (leader) {
    leader_ = true;
    (reason_ == std::string_view("stale") ? factory_->stale : factory_->miss).add();
    forward(cb, reason_);
    return http::FilterStatus::kContinue;
  }
  state_ = State::kWaiting;
  wait_ = w;
  w->timer =
      std::make_unique<boost::asio::steady_timer>(cb.io(), factory_->config->coalesce_timeout);
  w->timer->async_wait([w](const boost::system::error_code& ec) {
    if (ec) return;
    Filter* f = nullptr;
    {
      std::lock_guard lock(w->mutex);
      f = w->filter;
    }
    if (f != nullptr) f->wake();
  });
  return http::FilterStatus::kStopIteration;
}

// After a coalesced wait (the fill ended, or the wait timed out).
void Filter::wake() {
  if (state_ != State::kWaiting || cb_ == nullptr) return;
  {
    std::lock_guard lock(wait_->mutex);
    wait_->filter = nullptr;
    if (wait_->timer) wait_->timer->cancel();
  }
  wait_.reset();
  if (serve_if_fresh(*cb_, true)) return;
  // The fill gave nothing to share: this one goes upstream by itself.
  (reason_ == std::string_view("stale") ? factory_->stale : factory_->miss).add();
  forward(*cb_, reason_);
  cb_->continue_request();
}

bool Filter::serve_if_fresh(http::FilterCallbacks& cb, bool collapsed) {
  const std::shared_ptr<const Entry> e = factory_->store->lookup(key_, cb.request());
  if (!e) {
    reason_ = factory_->store->has_key(key_) ? "vary-miss" : "uri-miss";
    return false;
  }
  const int64_t now = now_seconds();
  const int64_t age = std::max<int64_t>(0, e->current_age(now));
  int64_t lifetime = e->freshness_lifetime;
  if (request_cc_.max_age >= 0) lifetime = std::min(lifetime, request_cc_.max_age);
  bool fresh = age < lifetime;
  if (fresh && request_cc_.min_fresh >= 0) fresh = lifetime - age >= request_cc_.min_fresh;
  if (!fresh && !e->must_revalidate && request_cc_.max_age < 0 &&
      (request_cc_.max_stale_any ||
       (request_cc_.max_stale >= 0 && age - e->freshness_lifetime <= request_cc_.max_stale))) {
    fresh = true;  // the client accepts it stale [RFC 9111 5.2.1.2]
  }
  if (!fresh) {
    reason_ = "stale";
    stale_ = e;
    return false;
  }
  (collapsed ? factory_->collapsed : factory_->hit).add();
  respond(cb, *e, age,
          fmt::format("sidecar; hit; ttl={}{}", e->freshness_lifetime - age,
                      collapsed ? "; collapsed" : ""));
  return true;
}

void Filter::respond(http::FilterCallbacks& cb, const Entry& e, int64_t age,
                     std::string cache_status) {
  http::LocalResponse r;
  r.status = e.status;
  r.headers = e.headers;
  r.headers.emplace_back("age", std::to_string(std::max<int64_t>(0, age)));
  r.headers.emplace_back("cache-status", std::move(cache_status));
  r.body = e.body;
  state_ = State::kHit;
  cb.set_response_detail("cache_hit");
  cb.send_response(std::move(r));
}

void Filter::add_validators(http::FilterCallbacks& cb) {
  const http::RequestHead& req = cb.request();
  // The client's own conditional request goes as it is (its 304 is its own).
  if (req.find("if-none-match") != nullptr || req.find("if-modified-since") != nullptr) return;
  for (const auto& [name, value] : stale_->headers) {
    if (name == "etag") {
      cb.add_request_header("if-none-match", value);
      revalidating_ = true;
    } else if (name == "last-modified") {
      cb.add_request_header("if-modified-since", value);
      revalidating_ = true;
    }
  }
}

// RFC 9111 4.3.4 (a 304 refreshes the stored entry) and RFC 5861 4
// (stale-if-error); true when the filter answered.
bool Filter::answer_from_stale(const http::ResponseHead& response, http::FilterCallbacks& cb) {
  const int64_t now = now_seconds();
  if (response.status == 304 && revalidating_) {
    auto e = std::make_shared<Entry>(*stale_);
    // The 304's fields replace the stored ones of the same names.
    std::vector<std::string> names;
    Fields fresh_fields;
    for (const http::HeaderField& f : response.headers) {
      if (hop_by_hop_or_ours(f.name)) continue;
      std::string name(f.name);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
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
    e->corrected_initial_age = std::max<int64_t>(now - date, now - request_time_);
    e->corrected_initial_age = std::max<int64_t>(0, e->corrected_initial_age);
    e->freshness_lifetime = lifetime;
    e->must_revalidate = cc.must_revalidate || cc.proxy_revalidate;
    e->stale_if_error = cc.stale_if_error;
    factory_->store->insert(key_, e);
    factory_->stored.add();
    end_fill();
    respond(cb, *e, e->corrected_initial_age, "sidecar; fwd=stale; fwd-status=304");
    return true;
  }
  if (response.status >= 500 && !stale_->must_revalidate) {
    const int64_t staleness = stale_->current_age(now) - stale_->freshness_lifetime;
    const int64_t allowed = std::max(stale_->stale_if_error, request_cc_.stale_if_error);
    if (allowed >= 0 && staleness <= allowed) {
      end_fill();
      respond(
          cb, *stale_, stale_->current_age(now),
          fmt::format("sidecar; fwd=stale; fwd-status={}; detail=stale-if-error", response.status));
      return true;
    }
  }
  return false;
}

void Filter::forward(http::FilterCallbacks& cb, const char* reason) {
  state_ = State::kForwarded;
  reason_ = reason;
  cb_ = &cb;
  if (stale_ && reason == std::string_view("stale")) add_validators(cb);
}

void Filter::on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) {
  if (state_ == State::kUnsafe) {
    // A successful unsafe request changes the resource [RFC 9111 4.4].
    if (response.status < 400) factory_->store->invalidate(key_);
    return;
  }
  if (state_ != State::kForwarded) return;
  if (stale_ && answer_from_stale(response, cb)) return;
  const CacheControl cc = cache_control_of(response);
  const int64_t now = now_seconds();
  const char* why = cb.request().method == http::Method::kGet
                        ? not_storable(response, cc, authorization_, request_cc_)
                        : "head";
  std::vector<std::string> vary;
  int64_t date = now;
  int64_t lifetime = -1;
  if (*why == '\0' && !vary_names(response, vary)) why = "vary";
  if (*why == '\0') {
    if (const http::HeaderField* d = response.find("date")) {
      if (auto v = parse_http_date(d->value)) date = *v;
    }
    lifetime = freshness_lifetime(cc, response, date);
    if (lifetime <= 0) why = "not fresh";
  }
  if (*why == '\0' && response.has_content_length &&
      response.content_length > factory_->config->max_object_size) {
    why = "too large";
  }
  cb.add_response_header("cache-status",
                         fmt::format("sidecar; fwd={}; fwd-status={}{}", reason_, response.status,
                                     *why == '\0' ? "; stored" : ""));
  if (*why != '\0') {
    end_fill();  // waiters go upstream themselves
    return;
  }
  auto e = std::make_shared<Entry>();
  e->status = response.status;
  for (const http::HeaderField& f : response.headers) {
    if (hop_by_hop_or_ours(f.name)) continue;
    std::string name(f.name);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    e->headers.emplace_back(std::move(name), std::string(f.value));
  }
  for (const std::string& name : vary) {
    const http::HeaderField* f = cb.request().find(name);
    std::string_view v = f == nullptr ? std::string_view() : f->value;
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    e->vary.emplace_back(name, std::string(v));
  }
  // RFC 9111 4.2.3.
  int64_t age_value = 0;
  if (const http::HeaderField* a = response.find("age")) {
    CacheControl tmp;  // reuse the delta-seconds reading
    parse_cache_control(fmt::format("max-age={}", a->value), tmp);
    age_value = std::max<int64_t>(0, tmp.max_age);
  }
  const int64_t apparent_age = std::max<int64_t>(0, now - date);
  const int64_t corrected_age_value = age_value + (now - request_time_);
  e->response_time = now;
  e->corrected_initial_age = std::max(apparent_age, corrected_age_value);
  e->freshness_lifetime = lifetime;
  e->must_revalidate = cc.must_revalidate || cc.proxy_revalidate;
  e->stale_if_error = cc.stale_if_error;
  if (response.body == http::BodyKind::kNone) {
    factory_->store->insert(key_, std::move(e));
    factory_->stored.add();
    end_fill();
    return;
  }
  entry_ = std::move(e);
  capturing_ = true;
}

void Filter::on_response_data(http::Spans& data, bool end, http::FilterCallbacks&) {
  if (!capturing_) return;
  for (const auto& b : data) {
    entry_->body.append(static_cast<const char*>(b.data()), b.size());
  }
  if (entry_->body.size() > factory_->config->max_object_size) {
    capturing_ = false;  // streamed through, not stored
    entry_.reset();
    end_fill();
    return;
  }
  if (!end) return;
  capturing_ = false;
  factory_->store->insert(key_, std::move(entry_));
  factory_->stored.add();
  end_fill();
}

}  // namespace sidecar::filters::cache
