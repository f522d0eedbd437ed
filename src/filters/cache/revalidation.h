// Background revalidation of a stale entry: RFC 5861 3
// (stale-while-revalidate), nginx's proxy_cache_background_update. The
// request that found the entry stale is answered from it at once; one
// conditional GET (If-None-Match / If-Modified-Since from the entry's
// validators) goes to the route's cluster through the worker's
// http::AsyncClient, built from FilterCallbacks::upstream_request() (the
// route's rewrites, the client's end-to-end fields without its own
// conditionals and Range). Its answer, after the stream may have ended:
//   - 304: the entry is refreshed (RFC 9111 4.3.4);
//   - a storable response: it replaces the entry (a body up to
//     max_object_size; the AsyncClient reads at most 1 MiB);
//   - anything else (5xx, no answer): the entry stays as it was; the next
//     stale request within the window tries again.
// One per key at a time: the caller holds the key's fill
// (Store::begin_background_fill) and this ends it, which also wakes misses
// that waited for it.
//
// Counted in sidecar_cache_revalidations_total{result="not_modified|stored|
// not_stored|failed"}. Runs on the stream's worker thread.
#pragma once

#include <memory>
#include <string>

#include "filters/cache/store.h"
#include "http/filter.h"

namespace sidecar::filters::cache {

class Factory;

void revalidate_in_background(const std::shared_ptr<const Factory>& factory,
                              http::FilterCallbacks& cb, const std::string& key,
                              std::shared_ptr<const Entry> stale, bool authorization);

}  // namespace sidecar::filters::cache
