// A bounded single-producer, single-consumer queue of variable-size records
// (one per worker: the worker produces, the access log writer consumes). The
// producer never blocks and never allocates: a record that does not fit is
// refused and the caller counts it as dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sidecar::accesslog {

class Ring {
 public:
  // `capacity` bytes (rounded up to a power of two).
  explicit Ring(size_t capacity);

  // Producer. Reserves room for a record of `size` bytes and returns where to
  // write it (contiguous), or nullptr when the ring is too full. Call
  // commit() after writing.
  char* reserve(size_t size);
  void commit();
  // Bytes in use, for the producer to decide when to wake the consumer.
  size_t used() const;
  size_t capacity() const { return capacity_; }

  // Consumer. The next record, or nullptr when empty; release() it after use.
  const char* peek(size_t& size);
  void release();

 private:
  // Each record: a 4-byte length, then the bytes, padded to 8. A length of
  // kWrap means "continue at the start" (the record did not fit before the end).
  static constexpr uint32_t kWrap = 0xffffffff;

  const size_t capacity_;
  std::unique_ptr<char[]> data_;
  alignas(64) std::atomic<uint64_t> head_{0};  // consumer position
  alignas(64) std::atomic<uint64_t> tail_{0};  // producer position
  uint64_t reserved_tail_ = 0;                 // producer: tail after the reserved record
  uint64_t released_head_ = 0;                 // consumer: head after the peeked record
};

}  // namespace sidecar::accesslog
