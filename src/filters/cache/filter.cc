#include "filters/cache/filter.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <mutex>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "filters/cache/entry.h"
#include "filters/cache/revalidation.h"

namespace sidecar::filters::cache {
namespace {

constexpr const char* kRequests = "sidecar_cache_requests_total";
constexpr const char* kRequestsHelp =
    "Requests the cache filter saw, by result (hit, miss, stale, bypass, collapsed).";
constexpr const char* kStaleServed = "sidecar_cache_stale_served_total";
constexpr const char* kStaleServedHelp =
    "Answers from stale entries, by reason (stale-while-revalidate, stale-if-error; RFC 5861).";
constexpr const char* kRevalidations = "sidecar_cache_revalidations_total";
constexpr const char* kRevalidationsHelp =
    "Background revalidations of stale entries, by result (not_modified, stored, not_stored, "
    "failed).";

// The errors stale-if-error covers [RFC 5861 4].
bool is_error(uint16_t status) {
  return status == 500 || status == 502 || status == 503 || status == 504;
}

}  // namespace

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
      stored(*counter("sidecar_cache_stored_total", "Responses the cache filter stored.")),
      served_while_revalidating(
          *counter(kStaleServed, kStaleServedHelp, {{"reason", "stale-while-revalidate"}})),
      served_on_error(*counter(kStaleServed, kStaleServedHelp, {{"reason", "stale-if-error"}})),
      revalidated(*counter(kRevalidations, kRevalidationsHelp, {{"result", "not_modified"}})),
      revalidation_stored(*counter(kRevalidations, kRevalidationsHelp, {{"result", "stored"}})),
      revalidation_not_stored(
          *counter(kRevalidations, kRevalidationsHelp, {{"result", "not_stored"}})),
      revalidation_failed(*counter(kRevalidations, kRevalidationsHelp, {{"result", "failed"}})) {}

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
    return !collapsed && serve_while_revalidating(cb, e, age);
  }
  (collapsed ? factory_->collapsed : factory_->hit).add();
  respond(cb, e, age,
          fmt::format("sidecar; hit; ttl={}{}", e->freshness_lifetime - age,
                      collapsed ? "; collapsed" : ""));
  return true;
}

// RFC 5861 3: within the entry's stale-while-revalidate window (and
// nothing in the request or the entry asks for a validated answer) the
// stale entry answers now and one background revalidation refreshes it.
bool Filter::serve_while_revalidating(http::FilterCallbacks& cb,
                                      const std::shared_ptr<const Entry>& e, int64_t age) {
  if (e->stale_while_revalidate < 0 || e->must_revalidate || request_cc_.max_age >= 0 ||
      request_cc_.min_fresh >= 0 || age - e->freshness_lifetime > e->stale_while_revalidate) {
    return false;
  }
  if (factory_->store->begin_background_fill(key_)) {
    revalidate_in_background(factory_, cb, key_, e, authorization_);
  }
  factory_->stale.add();
  factory_->served_while_revalidating.add();
  respond(cb, e, age,
          fmt::format("sidecar; hit; ttl={}; detail=stale-while-revalidate",
                      e->freshness_lifetime - age));
  return true;
}

void Filter::respond(http::FilterCallbacks& cb, const std::shared_ptr<const Entry>& e, int64_t age,
                     std::string cache_status) {
  http::LocalResponse r;
  r.status = e->status;
  r.headers.reserve(e->headers.size() + 2);
  r.headers = e->headers;
  r.headers.emplace_back("age", std::to_string(std::max<int64_t>(0, age)));
  r.headers.emplace_back("cache-status", std::move(cache_status));
  // The stored body itself, not a copy (the entry is immutable).
  r.shared_body = std::shared_ptr<const std::string>(e, &e->body);
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
// (stale-if-error: the upstream's 500/502/503/504, or the proxy's own when
// it could not reach it); true when the filter answered.
bool Filter::answer_from_stale(const http::ResponseHead& response, http::FilterCallbacks& cb) {
  const int64_t now = now_seconds();
  if (response.status == 304 && revalidating_) {
    auto e = refreshed(*stale_, response, now, request_time_);
    factory_->store->insert(key_, e);
    factory_->stored.add();
    end_fill();
    respond(cb, e, e->corrected_initial_age, "sidecar; fwd=stale; fwd-status=304");
    return true;
  }
  if (is_error(response.status) && !stale_->must_revalidate) {
    const int64_t staleness = stale_->current_age(now) - stale_->freshness_lifetime;
    const int64_t allowed = std::max(stale_->stale_if_error, request_cc_.stale_if_error);
    if (allowed >= 0 && staleness <= allowed) {
      end_fill();
      factory_->served_on_error.add();
      respond(
          cb, stale_, stale_->current_age(now),
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
  const StoreDecision d =
      storable(response, cc, cb.request().method == http::Method::kGet, authorization_, request_cc_,
               factory_->config->max_object_size, now);
  cb.add_response_header("cache-status",
                         fmt::format("sidecar; fwd={}; fwd-status={}{}", reason_, response.status,
                                     *d.why_not == '\0' ? "; stored" : ""));
  if (*d.why_not != '\0') {
    end_fill();  // waiters go upstream themselves
    return;
  }
  const http::RequestHead& req = cb.request();
  auto e = make_entry(
      response, cc, d,
      [&req](const std::string& name) {
        const http::HeaderField* f = req.find(name);
        return f == nullptr ? std::string_view() : f->value;
      },
      now, request_time_);
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
