// Single-threaded intrusive reference counting for objects that live on one
// worker: every pending asynchronous operation holds a reference, so an object
// is deleted exactly when it is closed and its last completion handler ran.
// The count is not atomic: references must only be taken and dropped on the
// owning worker's thread.
#pragma once

#include <cstdint>

#include <boost/smart_ptr/intrusive_ptr.hpp>

namespace sidecar::core {

template <typename T>
class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;

  friend void intrusive_ptr_add_ref(const T* p) { ++p->refs_; }
  friend void intrusive_ptr_release(const T* p) {
    if (--p->refs_ == 0) delete p;
  }

 protected:
  ~RefCounted() = default;

 private:
  mutable uint32_t refs_ = 0;
};

template <typename T>
using Ref = boost::intrusive_ptr<T>;

}  // namespace sidecar::core
