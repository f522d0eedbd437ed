#include "crypto/crypto.h"

#include <atomic>

#include "core/shared_object.h"

namespace sidecar::crypto {
namespace {

std::atomic<const Library*> provided{nullptr};

}  // namespace

void provide(const Library* library) { provided.store(library, std::memory_order_release); }

const Library& library() {
  if (const Library* lib = provided.load(std::memory_order_acquire)) return *lib;
  using Entry = const Library* (*)();
  static const Library* lib =
      reinterpret_cast<Entry>(core::load_symbol("crypto", kLibrarySymbol))();
  return *lib;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // volatile: the compiler must not stop at the first difference.
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace sidecar::crypto
