// The cache filter's store: responses in memory, shared by every worker of
// the process (DESIGN.md "Threading model": the one place workers share
// mutable state, behind striped locks), LRU-bounded by bytes.
//
// Keys are "<listener>\0<authority>\0<path?query>"; under a key live up to
// kMaxVariants responses that differ by their Vary fields [RFC 9111 4.1].
// Entries are immutable once stored (a refresh replaces one), handed out as
// shared_ptr so a reader never holds a lock while it writes a response.
//
// Request coalescing: the first miss of a key becomes its filler
// (begin_fill); concurrent misses wait for end_fill, which wakes them on
// their own workers.
//
// Thread safety: every member is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/http1_parser.h"

namespace sidecar::filters::cache {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct Entry {
  uint16_t status = 200;
  Fields headers;  // as stored: no hop-by-hop fields, Age or Content-Length
  std::string body;
  Fields vary;  // (lower-case name, the request's value, "" when absent)
  // RFC 9111 4.2.3, in seconds since the epoch.
  int64_t response_time = 0;
  int64_t corrected_initial_age = 0;
  int64_t freshness_lifetime = 0;
  bool must_revalidate = false;  // must-revalidate or proxy-revalidate
  int64_t stale_if_error = -1;   // seconds it may be served stale on errors [RFC 5861 4]
  // seconds it may be served stale while one background revalidation runs
  // [RFC 5861 3]
  int64_t stale_while_revalidate = -1;
  size_t bytes() const;
  int64_t current_age(int64_t now) const { return corrected_initial_age + (now - response_time); }
};

// Whether `entry` answers a request with these header fields (its Vary
// fields have the same values, compared after trimming).
bool vary_matches(const Entry& entry, const http::RequestHead& request);

class Store {
 public:
  static constexpr size_t kStripes = 16;
  static constexpr size_t kMaxVariants = 8;

  // The process's store; `max_size` (bytes) sets its bound (the last config
  // loaded wins).
  static std::shared_ptr<Store> instance(uint64_t max_size);
  // The process's store if any filter made one (admin purge), else null.
  static std::shared_ptr<Store> existing();

  explicit Store(uint64_t max_size) { set_max_size(max_size); }
  void set_max_size(uint64_t bytes);

  // The variant of `key` for this request, or null; a hit moves the key to
  // the front of its stripe's LRU.
  std::shared_ptr<const Entry> lookup(const std::string& key, const http::RequestHead& request);
  // Whether `key` has any stored variant (a vary-miss vs a uri-miss).
  bool has_key(const std::string& key);
  // Stores `entry` (replacing the variant with the same Vary values), then
  // evicts least recently used keys of the stripe while it is over its share.
  void insert(const std::string& key, std::shared_ptr<const Entry> entry);
  // Drops every variant of `key` (an unsafe method succeeded, RFC 9111 4.4).
  void invalidate(const std::string& key);
  // Drops the entries whose path starts with `prefix` ("" drops all);
  // returns how many keys went.
  size_t purge(std::string_view path_prefix);

  // Coalescing: true when the caller is now the filler of `key`; false when
  // a fill is in progress, and then `wake` runs (on any thread: the caller
  // posts to its worker) when it ends.
  bool begin_fill(const std::string& key, std::function<void()> wake);
  void end_fill(const std::string& key);
  // A background fill (stale-while-revalidate): true when the caller is now
  // the filler of `key` (it calls end_fill when done, which wakes misses
  // that came meanwhile); false when a fill is in progress (nothing is
  // registered).
  bool begin_background_fill(const std::string& key);

  uint64_t bytes() const;
  uint64_t entries() const;

 private:
  struct Slot {
    std::vector<std::shared_ptr<const Entry>> variants;
    std::list<std::string>::iterator lru;
    size_t bytes = 0;
  };
  struct Stripe {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Slot> slots;
    std::list<std::string> lru;  // most recent first
    std::unordered_map<std::string, std::vector<std::function<void()>>> filling;
    size_t bytes = 0;
  };
  Stripe& stripe(const std::string& key) {
    return stripes_[std::hash<std::string>{}(key) % kStripes];
  }
  void erase(Stripe& s, std::unordered_map<std::string, Slot>::iterator it);

  std::array<Stripe, kStripes> stripes_;
  std::atomic<uint64_t> stripe_limit_{0};
};

// The admin endpoint's work: `query` is "prefix=/a%20b" (undecoded; none:
// everything); returns {"purged":N,"entries":N,"bytes":N}.
std::string purge(std::string_view query);

}  // namespace sidecar::filters::cache
