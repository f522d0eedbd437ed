// Token buckets shared exactly by all workers (Envoy's local_ratelimit
// token bucket; nginx limit_req counts the same way with a leaky bucket).
//
// A bucket holds up to `max_tokens`; every `fill_interval` it gains
// `tokens_per_fill` (discrete fills, as Envoy). A request takes one token
// or is limited. The state (tokens, index of the last fill) is one 64-bit
// atomic updated by compare-and-swap: every worker sees the same count, no
// lock, no per-worker share of the limit.
//
// KeyedBuckets holds one bucket per key (a client IP, a header value) in an
// LRU of at most `max_keys` entries, in shards with a mutex each, so a flood
// of distinct keys costs bounded memory (an evicted key starts again full).
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sidecar::filters::local_rate_limit {

struct BucketSpec {
  uint32_t max_tokens = 0;
  uint32_t tokens_per_fill = 0;
  std::chrono::milliseconds fill_interval{1000};
  bool operator==(const BucketSpec&) const = default;
};

struct TakeResult {
  bool allowed = false;
  uint32_t remaining = 0;            // tokens left after this request
  std::chrono::nanoseconds reset{};  // until the next fill
};

using Clock = std::chrono::steady_clock;

class TokenBucket {
 public:
  // A full bucket at `now`. `epoch`: the time fills are counted from.
  TokenBucket(const BucketSpec& spec, Clock::time_point epoch, Clock::time_point now);
  TakeResult take(const BucketSpec& spec, Clock::time_point epoch, Clock::time_point now);

 private:
  std::atomic<uint64_t> state_;  // tokens << 32 | fill index (mod 2^32)
};

class KeyedBuckets {
 public:
  KeyedBuckets(BucketSpec spec, size_t max_keys);
  // Takes a token from `key`'s bucket (created full on first use).
  TakeResult take(std::string_view key, Clock::time_point now);
  // Takes from the one bucket of unkeyed requests.
  TakeResult take(Clock::time_point now) { return single_.take(spec_, epoch_, now); }
  // Keys held now (for tests).
  size_t size() const;
  const BucketSpec& spec() const { return spec_; }

 private:
  struct Shard {
    mutable std::mutex mu;
    // Most recently used first; the map points into the list.
    std::list<std::pair<std::string, TokenBucket>> lru;
    std::unordered_map<std::string_view, std::list<std::pair<std::string, TokenBucket>>::iterator>
        index;
  };
  static constexpr size_t kShards = 16;
  const BucketSpec spec_;
  const Clock::time_point epoch_;
  const size_t max_per_shard_;
  TokenBucket single_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace sidecar::filters::local_rate_limit
