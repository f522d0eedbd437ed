#include "core/small_alloc.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/sanitizers.h"

namespace sidecar::core {
namespace {

constexpr size_t kHeader = 16;
constexpr size_t kClass = 64;   // bytes
constexpr size_t kClasses = 8;  // blocks up to 512 bytes, header included
constexpr size_t kKeep = 128;   // free blocks kept per class and thread
static_assert(kMaxSmall + kHeader == kClass * kClasses);

struct FreeLists {
  std::vector<void*> lists[kClasses];
  ~FreeLists();
};
// Set once this thread's lists are destroyed (thread exit): blocks freed
// after that go back to malloc. A plain bool stays readable until then.
thread_local bool t_lists_gone = false;
thread_local FreeLists t_lists;

FreeLists::~FreeLists() {
  t_lists_gone = true;
  for (auto& l : lists) {
    for (void* p : l) std::free(p);
  }
}

size_t& capacity_of(void* block) { return *static_cast<size_t*>(block); }

}  // namespace

void* small_alloc(size_t size) {
  const size_t total = size + kHeader;
  void* block = nullptr;
  size_t capacity = total;
  if (total <= kClass * kClasses) {
    const size_t c = (total - 1) / kClass;
    capacity = (c + 1) * kClass;
#ifndef SIDECAR_ASAN
    if (!t_lists_gone && !t_lists.lists[c].empty()) {
      block = t_lists.lists[c].back();
      t_lists.lists[c].pop_back();
    }
#endif
  }
  if (block == nullptr) block = std::malloc(capacity);
  if (block == nullptr) return nullptr;
  capacity_of(block) = capacity;
  return static_cast<char*>(block) + kHeader;
}

void small_free(void* p) {
  if (p == nullptr) return;
  void* block = static_cast<char*>(p) - kHeader;
#ifndef SIDECAR_ASAN
  const size_t capacity = capacity_of(block);
  if (capacity <= kClass * kClasses && capacity % kClass == 0 && !t_lists_gone) {
    auto& l = t_lists.lists[capacity / kClass - 1];
    if (l.size() < kKeep) {
      l.push_back(block);
      return;
    }
  }
#endif
  std::free(block);
}

void* small_realloc(void* p, size_t size) {
  if (p == nullptr) return small_alloc(size);
  if (size == 0) {
    small_free(p);
    return nullptr;
  }
  const size_t usable = capacity_of(static_cast<char*>(p) - kHeader) - kHeader;
  if (size <= usable) return p;
  void* q = small_alloc(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, usable);
  small_free(p);
  return q;
}

}  // namespace sidecar::core
