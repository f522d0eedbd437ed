#include "filters/cache/revalidation.h"

#include <spdlog/spdlog.h>

#include "filters/cache/entry.h"
#include "filters/cache/filter.h"

namespace sidecar::filters::cache {
namespace {

// The client's own preconditions and ranges are its business, not the
// cache's (RFC 9111 4.3.1: the cache sends its validators).
bool client_conditional(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"};
  for (std::string_view k : kNames) {
    if (http::iequals(name, k)) return true;
  }
  return false;
}

// A response head over the AsyncClient's answer (views into `r`).
http::ResponseHead head_of(const http::ClientResponse& r) {
  http::ResponseHead h;
  h.status = static_cast<uint16_t>(r.status);
  for (const auto& [name, value] : r.headers) h.headers.push_back({name, value, 0, 0});
  h.has_content_length = true;
  h.content_length = r.body.size();
  h.body = r.body.empty() ? http::BodyKind::kNone : http::BodyKind::kContentLength;
  return h;
}

}  // namespace

void revalidate_in_background(const std::shared_ptr<const Factory>& factory,
                              http::FilterCallbacks& cb, const std::string& key,
                              std::shared_ptr<const Entry> stale, bool authorization) {
  const std::string cluster(cb.route_cluster());
  if (cluster.empty()) {
    factory->store->end_fill(key);
    return;
  }
  http::ClientRequest req = cb.upstream_request();
  req.method = "GET";  // a HEAD that found the entry refreshes it with a GET
  std::erase_if(req.headers, [](const auto& h) { return client_conditional(h.first); });
  for (const auto& [name, value] : stale->headers) {
    if (name == "etag") req.headers.emplace_back("if-none-match", value);
    if (name == "last-modified") req.headers.emplace_back("if-modified-since", value);
  }
  const int64_t request_time = now_seconds();
  auto done = [factory, key, stale = std::move(stale), authorization, request_time,
               fields = req.headers](http::ClientResponse r) {
    Store& store = *factory->store;
    const int64_t now = now_seconds();
    const http::ResponseHead head = head_of(r);
    if (r.status == 0) {
      SPDLOG_DEBUG("cache: background revalidation failed: {}", r.error);
      factory->revalidation_failed.add();
    } else if (r.status == 304) {
      store.insert(key, refreshed(*stale, head, now, request_time));
      factory->revalidated.add();
      factory->stored.add();
    } else {
      const CacheControl cc = cache_control_of(head);
      const StoreDecision d = storable(head, cc, true, authorization, CacheControl{},
                                       factory->config->max_object_size, now);
      if (*d.why_not == '\0') {
        auto field = [&fields](const std::string& name) {
          for (const auto& [n, v] : fields) {
            if (http::iequals(n, name)) return std::string_view(v);
          }
          return std::string_view();
        };
        auto e = make_entry(head, cc, d, field, now, request_time);
        e->body = std::move(r.body);
        store.insert(key, std::move(e));
        factory->revalidation_stored.add();
        factory->stored.add();
      } else {
        factory->revalidation_not_stored.add();
      }
    }
    store.end_fill(key);
  };
  cb.http_client().send(cluster, std::move(req), std::move(done));
}

}  // namespace sidecar::filters::cache
