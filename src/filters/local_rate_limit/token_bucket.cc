#include "filters/local_rate_limit/token_bucket.h"

#include <algorithm>
#include <functional>

namespace sidecar::filters::local_rate_limit {
namespace {

uint32_t fill_index(const BucketSpec& spec, Clock::time_point epoch, Clock::time_point now) {
  const auto since = std::chrono::duration_cast<std::chrono::nanoseconds>(now - epoch).count();
  const auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.fill_interval);
  // Modulo 2^32: only differences between indexes are used.
  return static_cast<uint32_t>(static_cast<uint64_t>(since < 0 ? 0 : since) /
                               static_cast<uint64_t>(interval.count()));
}

uint64_t pack(uint32_t tokens, uint32_t index) { return uint64_t{tokens} << 32 | index; }

}  // namespace

TokenBucket::TokenBucket(const BucketSpec& spec, Clock::time_point epoch, Clock::time_point now)
    : state_(pack(spec.max_tokens, fill_index(spec, epoch, now))) {}

TakeResult TokenBucket::take(const BucketSpec& spec, Clock::time_point epoch,
                             Clock::time_point now) {
  const uint32_t index = fill_index(spec, epoch, now);
  const auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.fill_interval);
  const auto since = std::chrono::duration_cast<std::chrono::nanoseconds>(now - epoch);
  TakeResult r;
  r.reset = interval - since % interval;
  uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    uint64_t tokens = old >> 32;
    const uint32_t last = static_cast<uint32_t>(old);
    // Fills since the last update; a clock read by another worker just
    // before ours may be one fill ahead (index - last "negative"): no fill.
    const uint32_t fills = index - last;
    uint32_t new_index = last;
    if (fills != 0 && fills < (1u << 31)) {
      tokens = std::min<uint64_t>(spec.max_tokens, tokens + uint64_t{fills} * spec.tokens_per_fill);
      new_index = index;
    }
    r.allowed = tokens > 0;
    if (r.allowed) --tokens;
    r.remaining = static_cast<uint32_t>(tokens);
    const uint64_t next = pack(static_cast<uint32_t>(tokens), new_index);
    if (next == old) return r;
    if (state_.compare_exchange_weak(old, next, std::memory_order_relaxed)) return r;
  }
}

KeyedBuckets::KeyedBuckets(BucketSpec spec, size_t max_keys)
    : spec_(spec),
      epoch_(Clock::now()),
      max_per_shard_(std::max<size_t>(1, (max_keys + kShards - 1) / kShards)),
      single_(spec_, epoch_, epoch_),
      shards_(new Shard[kShards]) {}

TakeResult KeyedBuckets::take(std::string_view key, Clock::time_point now) {
  Shard& s = shards_[std::hash<std::string_view>{}(key) % kShards];
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it != s.index.end()) {
    s.lru.splice(s.lru.begin(), s.lru, it->second);
  } else {
    if (s.index.size() >= max_per_shard_) {
      s.index.erase(s.lru.back().first);
      s.lru.pop_back();
    }
    s.lru.emplace_front(std::piecewise_construct, std::forward_as_tuple(key),
                        std::forward_as_tuple(spec_, epoch_, now));
    s.index.emplace(s.lru.front().first, s.lru.begin());
  }
  return s.lru.front().second.take(spec_, epoch_, now);
}

size_t KeyedBuckets::size() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].index.size();
  }
  return n;
}

}  // namespace sidecar::filters::local_rate_limit
