#include "accesslog/ring.h"

#include <bit>
#include <cstring>

namespace sidecar::accesslog {
namespace {
constexpr size_t kHeader = 8;  // 4-byte length, padded
size_t padded(size_t n) { return (n + 7) & ~size_t{7}; }
}  // namespace

Ring::Ring(size_t capacity)
    : capacity_(std::bit_ceil(capacity < 4096 ? size_t{4096} : capacity)),
      data_(new char[capacity_]) {}

size_t Ring::used() const {
  return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_acquire);
}

char* Ring::reserve(size_t size) {
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  const size_t need = kHeader + padded(size);
  if (need > capacity_ / 2) return nullptr;
  size_t pos = tail & (capacity_ - 1);
  uint64_t start = tail;
  if (pos + need > capacity_) {
    // Not contiguous: mark the rest of the ring as skipped, start at 0.
    const size_t skip = capacity_ - pos;
    if (tail + skip + need - head > capacity_) return nullptr;
    const uint32_t wrap = kWrap;
    std::memcpy(data_.get() + pos, &wrap, sizeof(wrap));
    start = tail + skip;
    pos = 0;
  } else if (tail + need - head > capacity_) {
    return nullptr;
  }
  const uint32_t n = static_cast<uint32_t>(size);
  std::memcpy(data_.get() + pos, &n, sizeof(n));
  reserved_tail_ = start + need;
  return data_.get() + pos + kHeader;
}

void Ring::commit() { tail_.store(reserved_tail_, std::memory_order_release); }

const char* Ring::peek(size_t& size) {
  uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  if (head == tail) return nullptr;
  size_t pos = head & (capacity_ - 1);
  uint32_t n = 0;
  std::memcpy(&n, data_.get() + pos, sizeof(n));
  if (n == kWrap) {
    head += capacity_ - pos;
    pos = 0;
    std::memcpy(&n, data_.get(), sizeof(n));
  }
  size = n;
  released_head_ = head + kHeader + padded(n);
  return data_.get() + pos + kHeader;
}

void Ring::release() { head_.store(released_head_, std::memory_order_release); }

}  // namespace sidecar::accesslog
