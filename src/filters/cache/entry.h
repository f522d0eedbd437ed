// Stored entries from responses (RFC 9111 3, 4.2, 4.3.4): the rules shared
// by the cache filter's in-line path (filter.cc) and its background
// revalidation (revalidation.cc). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/cache/cache_control.h"
#include "filters/cache/store.h"
#include "http/http1_parser.h"

namespace sidecar::filters::cache {

// Seconds since the epoch (the store's clock).
int64_t now_seconds();

// The message's Cache-Control lines merged; without any, HTTP/1.0's
// `Pragma: no-cache` reads as no-cache [RFC 9111 5.4].
CacheControl cache_control_of(const http::MessageHead& head);

// RFC 9111 4.2.1: the freshness lifetime of a response (seconds), or -1
// when it has none explicit. `date` is its Date (or the time it arrived).
int64_t freshness_lifetime(const CacheControl& cc, const http::ResponseHead& response,
                           int64_t date);

// Whether a shared cache may store the response to a GET (RFC 9111 3, 3.5),
// given its parsed Cache-Control; "" when it may, else why not.
const char* not_storable(const http::ResponseHead& response, const CacheControl& cc,
                         bool request_has_authorization, const CacheControl& request_cc);

// What storing a response needs to know, from storable().
struct StoreDecision {
  const char* why_not = "";       // "" when it is stored
  std::vector<std::string> vary;  // Vary names, lower case
  int64_t date = 0;               // its Date (or now)
  int64_t lifetime = -1;          // seconds
};

// All of RFC 9111 3 for the response to a GET (`get` false: HEAD, never
// stored): not_storable, Vary not `*`, an explicit positive lifetime, a
// Content-Length within `max_object_size` (bytes).
StoreDecision storable(const http::ResponseHead& response, const CacheControl& cc, bool get,
                       bool request_has_authorization, const CacheControl& request_cc,
                       uint64_t max_object_size, int64_t now);

// A new entry (no body yet) for `response`: its end-to-end fields in lower
// case (no hop-by-hop, Content-Length, Age or Cache-Status), the request's
// values of the Vary fields (`request_field(name)`: "" when absent), its
// ages [RFC 9111 4.2.3] from `now` and `request_time` (seconds).
std::shared_ptr<Entry> make_entry(
    const http::ResponseHead& response, const CacheControl& cc, const StoreDecision& d,
    const std::function<std::string_view(const std::string&)>& request_field, int64_t now,
    int64_t request_time);

// `stale` refreshed by a 304: the 304's fields replace the stored ones of
// the same names, freshness from the merged fields [RFC 9111 4.3.4].
std::shared_ptr<Entry> refreshed(const Entry& stale, const http::ResponseHead& not_modified,
                                 int64_t now, int64_t request_time);

}  // namespace sidecar::filters::cache
