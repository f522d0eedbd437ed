#include "core/buffer.h"

#include <cstring>

#include "core/sanitizers.h"
#ifdef SIDECAR_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace sidecar::core {
namespace {

// Under ASan a free block is poisoned, so that a view kept into a buffer
// after it went back to the pool is reported like a use after free.
void poison(char* p) {
#ifdef SIDECAR_ASAN
  ASAN_POISON_MEMORY_REGION(p, BufferPool::kBlockSize);
#else
  (void)p;
#endif
}
void unpoison(char* p) {
#ifdef SIDECAR_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, BufferPool::kBlockSize);
#else
  (void)p;
#endif
}

// Set when this thread's pool is destroyed (thread exit): buffers freed after
// that (a worker's connections are destroyed with its io_context, possibly on
// another thread or later) must not touch it. A plain bool has no destructor,
// so it stays readable until the thread is gone.
thread_local bool t_pool_gone = false;

struct LocalPool : BufferPool {
  ~LocalPool() { t_pool_gone = true; }
};

}  // namespace

BufferPool::~BufferPool() {
  for (auto& b : free_) unpoison(b.get());
}

std::unique_ptr<char[]> BufferPool::take() {
  ++in_use_;
  if (free_.empty()) {
    // Not make_unique: zero-filling a buffer that is about to be overwritten
    // costs time and touches pages for nothing.
    return std::unique_ptr<char[]>(new char[kBlockSize]);
  }
  std::unique_ptr<char[]> b = std::move(free_.back());
  free_.pop_back();
  unpoison(b.get());
  return b;
}

void BufferPool::give(std::unique_ptr<char[]> block) {
  if (!block) return;
  --in_use_;
  if (free_.size() < max_free_) {
    poison(block.get());
    free_.push_back(std::move(block));
  }
}

BufferPool& BufferPool::local() {
  thread_local LocalPool pool;
  return pool;
}

std::unique_ptr<char[]> BufferPool::take_local() {
  if (t_pool_gone) return std::unique_ptr<char[]>(new char[kBlockSize]);
  return local().take();
}

void BufferPool::give_local(std::unique_ptr<char[]> block) {
  if (t_pool_gone) return;  // freed by the unique_ptr
  local().give(std::move(block));
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this == &o) return *this;
  drop();
  data_ = std::move(o.data_);
  capacity_ = o.capacity_;
  begin_ = o.begin_;
  end_ = o.end_;
  o.capacity_ = o.begin_ = o.end_ = 0;
  return *this;
}

void Buffer::drop() {
  if (capacity_ == BufferPool::kBlockSize) {
    BufferPool::give_local(std::move(data_));
  } else {
    data_.reset();
  }
  capacity_ = begin_ = end_ = 0;
}

void Buffer::compact() {
  if (begin_ == 0) return;
  const size_t n = end_ - begin_;
  if (n > 0) std::memmove(data_.get(), data_.get() + begin_, n);
  begin_ = 0;
  end_ = n;
}

void Buffer::reserve(size_t capacity) {
  if (capacity <= capacity_) return;
  if (!data_ && capacity == BufferPool::kBlockSize) {
    data_ = BufferPool::take_local();
    capacity_ = BufferPool::kBlockSize;
    begin_ = end_ = 0;
    return;
  }
  // Not make_unique: zero-filling a buffer that is about to be overwritten
  // costs time and touches pages for nothing.
  std::unique_ptr<char[]> bigger(new char[capacity]);
  const size_t n = end_ - begin_;
  if (n > 0) std::memcpy(bigger.get(), data_.get() + begin_, n);
  drop();
  data_ = std::move(bigger);
  capacity_ = capacity;
  begin_ = 0;
  end_ = n;
}

bool Buffer::release() {
  if (!empty()) return false;
  drop();
  return true;
}

}  // namespace sidecar::core
