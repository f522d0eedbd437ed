#include "core/buffer.h"

#include <cstring>

namespace sidecar::core {

void Buffer::compact() {
  if (begin_ == 0) return;
  const size_t n = end_ - begin_;
  if (n > 0) std::memmove(data_.get(), data_.get() + begin_, n);
  begin_ = 0;
  end_ = n;
}

void Buffer::reserve(size_t capacity) {
  if (capacity <= capacity_) return;
  // Not make_unique: zero-filling a buffer that is about to be overwritten
  // costs time and touches pages for nothing.
  std::unique_ptr<char[]> bigger(new char[capacity]);
  const size_t n = end_ - begin_;
  if (n > 0) std::memcpy(bigger.get(), data_.get() + begin_, n);
  data_ = std::move(bigger);
  capacity_ = capacity;
  begin_ = 0;
  end_ = n;
}

}  // namespace sidecar::core
