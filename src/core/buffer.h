// A byte buffer for socket reads: one contiguous block with a readable
// region [begin, end) and free space after it, and the per-thread pool its
// blocks come from.
//
// Views handed out by `readable()` stay valid until `compact`, `reserve` or
// `release` is called; `consume` and `commit` never move bytes. Not
// thread-safe (a buffer belongs to one connection, on one worker).
//
// Memory: a buffer may hold no block at all (`has_storage()` false). A
// connection takes a block when bytes arrive and gives it back when it goes
// idle with nothing buffered (haproxy's way), so an idle keep-alive
// connection holds no read buffer. Blocks of BufferPool::kBlockSize bytes
// come from, and go back to, the pool of the thread that runs the call
// (each worker has its own, so no locking); larger blocks (a buffer grown
// for a large upload) are allocated and freed directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace sidecar::core {

// Free blocks of kBlockSize bytes, kept for reuse by one thread.
//
// `take` pops a free block or allocates one; `give` keeps up to max_free()
// blocks and frees the rest, so the memory a burst of connections used
// returns to the allocator once it is over. Counters are for metrics
// (sidecar_read_buffers_*): read them on the owning thread.
class BufferPool {
 public:
  static constexpr size_t kBlockSize = 16 * 1024;  // bytes
  static constexpr size_t kDefaultMaxFree = 64;    // blocks (1 MiB)

  explicit BufferPool(size_t max_free = kDefaultMaxFree) : max_free_(max_free) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A block of kBlockSize bytes (uninitialized).
  std::unique_ptr<char[]> take();
  // Returns a block of kBlockSize bytes taken from any pool.
  void give(std::unique_ptr<char[]> block);

  // Blocks taken and not given back (held by buffers), and blocks kept free.
  int64_t in_use() const { return in_use_; }
  size_t free_blocks() const { return free_.size(); }
  size_t max_free() const { return max_free_; }

  // The calling thread's pool. After the thread's pool was destroyed (thread
  // exit), take() and give() on it fall back to plain new/delete.
  static BufferPool& local();
  // take()/give() on the calling thread's pool, safe at any time.
  static std::unique_ptr<char[]> take_local();
  static void give_local(std::unique_ptr<char[]> block);

 private:
  const size_t max_free_;
  std::vector<std::unique_ptr<char[]>> free_;
  int64_t in_use_ = 0;
};

class Buffer {
 public:
  Buffer() = default;
  // Takes a block of at least `capacity` bytes now.
  explicit Buffer(size_t capacity) { reserve(capacity); }
  ~Buffer() { drop(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;

  std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  size_t capacity() const { return capacity_; }
  bool has_storage() const { return data_ != nullptr; }

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
  // Ensures capacity() >= `capacity` (bytes), keeping the readable bytes. A
  // buffer without storage asking for BufferPool::kBlockSize gets a pooled
  // block (other sizes are allocated as asked).
  void reserve(size_t capacity);
  // Gives the block back (to the thread's pool when pool-sized) if nothing
  // is buffered; true when the buffer holds no storage afterwards.
  bool release();

 private:
  void drop();

  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace sidecar::core
