// The `cache` filter: an RFC 9111 shared cache in memory (docs/filters.md
// "cache"), Varnish's and nginx proxy_cache's job beside the app.
//
// GET and HEAD are looked up under listener, authority and path with query;
// a fresh stored response is answered by the filter itself (a local reply
// that still passes the response filters) with `Age` and
// `Cache-Status: sidecar; hit; ttl=N` [RFC 9211]. Otherwise the request goes
// upstream (`Cache-Status: sidecar; fwd=uri-miss|vary-miss|stale|request;
// fwd-status=N[; stored]`) and the response is stored when RFC 9111 3 allows
// a shared cache to: explicit freshness (s-maxage, max-age or Expires), no
// no-store / private / no-cache, a status cacheable by default, `Vary` not
// `*`, no Set-Cookie, and for requests with Authorization only with public,
// s-maxage or must-revalidate (3.5). Bodies over `max_object_size` stream
// through and are not stored. Concurrent misses of one key wait for the first
// one's response (coalescing, at most `coalesce_timeout`). A successful
// POST/PUT/PATCH/DELETE drops the stored responses of its URI (4.4).
//
// A stale entry with a validator is revalidated: the request goes upstream
// with If-None-Match / If-Modified-Since (unless the client sent its own),
// and a 304 refreshes the entry's fields and freshness [RFC 9111 4.3.3,
// 4.3.4] and the entry is answered (`fwd=stale; fwd-status=304`).
//
// RFC 5861: within an entry's `stale-while-revalidate=N` the stale entry is
// answered at once (`Cache-Status: sidecar; hit; ttl=-N;
// detail=stale-while-revalidate`) and one background revalidation per key
// refreshes it (revalidation.h). A 500/502/503/504, the upstream's or the
// proxy's own when it cannot reach it (connect failure, timeout), while an
// entry is stale within its stale-if-error (the response's or the
// request's) answers the stale entry instead (`fwd=stale; fwd-status=503;
// detail=stale-if-error`). Neither for must-revalidate entries.
//
// Not done: heuristic freshness, an on-disk tier.
//
// Counters: sidecar_cache_requests_total{result="hit|miss|stale|bypass|collapsed"}
// (stale: the entry found was stale), sidecar_cache_stored_total,
// sidecar_cache_stale_served_total{reason="stale-while-revalidate|stale-if-error"},
// sidecar_cache_revalidations_total{result="not_modified|stored|not_stored|failed"}. Thread safety:
// as every filter (filter.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "filters/cache/cache_control.h"
#include "filters/cache/config.h"
#include "filters/cache/entry.h"
#include "filters/cache/store.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace boost::asio {
class io_context;
}

namespace sidecar::filters::cache {

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  const std::shared_ptr<Store> store;
  FilterCounter& hit;
  FilterCounter& miss;
  FilterCounter& stale;
  FilterCounter& bypass;
  FilterCounter& collapsed;
  FilterCounter& stored;
  FilterCounter& served_while_revalidating;
  FilterCounter& served_on_error;
  FilterCounter& revalidated;  // a background revalidation's 304
  FilterCounter& revalidation_stored;
  FilterCounter& revalidation_not_stored;
  FilterCounter& revalidation_failed;
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory);
  ~Filter() override;
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) override;
  void on_response_data(http::Spans& data, bool end, http::FilterCallbacks& cb) override;
  void on_stream_end() override;
  bool wants_response_data() const override { return true; }

  struct Wait;  // a coalesced miss waiting for its filler (filter.cc)

 private:
  enum class State : uint8_t { kIdle, kBypass, kHit, kWaiting, kForwarded, kUnsafe };
  bool serve_if_fresh(http::FilterCallbacks& cb, bool collapsed);
  bool serve_while_revalidating(http::FilterCallbacks& cb, const std::shared_ptr<const Entry>& e,
                                int64_t age);
  void respond(http::FilterCallbacks& cb, const std::shared_ptr<const Entry>& e, int64_t age,
               std::string cache_status);
  void add_validators(http::FilterCallbacks& cb);
  bool answer_from_stale(const http::ResponseHead& response, http::FilterCallbacks& cb);
  void forward(http::FilterCallbacks& cb, const char* reason);
  void wake();
  void end_fill();

  const std::shared_ptr<const Factory> factory_;
  State state_ = State::kIdle;
  std::string key_;
  CacheControl request_cc_;
  bool authorization_ = false;
  bool leader_ = false;
  bool capturing_ = false;
  const char* reason_ = "uri-miss";
  int64_t request_time_ = 0;
  std::shared_ptr<Entry> entry_;        // being filled
  std::shared_ptr<const Entry> stale_;  // the stale entry this request may refresh
  bool revalidating_ = false;           // validators were sent
  std::shared_ptr<Wait> wait_;
  http::FilterCallbacks* cb_ = nullptr;
};

}  // namespace sidecar::filters::cache
