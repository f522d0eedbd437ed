// A byte buffer for socket reads: one contiguous block with a readable
// region [begin, end) and free space after it.
//
// Views handed out by `readable()` stay valid until `compact` or `reserve`
// is called; `consume` and `commit` never move bytes. Not
// thread-safe (a buffer belongs to one connection, on one worker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace sidecar::core {

class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t capacity) { reserve(capacity); }

  std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  size_t capacity() const { return capacity_; }

  // Free space after the readable bytes (to read into), in bytes.
  char* write_ptr() { return data_.get() + end_; }
  size_t write_space() const { return capacity_ - end_; }

  // Marks `n` bytes after the readable region as written.
  void commit(size_t n) { end_ += n; }
  // Drops the first `n` readable bytes (n <= size()).
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }

  // Moves the readable bytes to the front so that all free space is after them.
  void compact();
  // Ensures capacity() >= `capacity` (bytes), keeping the readable bytes.
  void reserve(size_t capacity);

 private:
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace sidecar::core
