#include "core/small_alloc.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "core/sanitizers.h"

namespace sidecar::core {
namespace {

TEST(SmallAlloc, BlocksAreAlignedAndWritable) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{48}, kMaxSmall, kMaxSmall + 1, size_t{70000}}) {
    auto* p = static_cast<unsigned char*>(small_alloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    std::memset(p, 0xab, size);
    small_free(p);
  }
  small_free(nullptr);
}

TEST(SmallAlloc, AFreedBlockIsTakenAgainBySameClass) {
#ifdef SIDECAR_ASAN
  GTEST_SKIP() << "nothing is kept under ASan";
#else
  void* a = small_alloc(100);
  small_free(a);
  void* b = small_alloc(90);  // the same 128-byte class
  EXPECT_EQ(a, b);
  void* c = small_alloc(300);  // another class
  EXPECT_NE(c, b);
  small_free(b);
  small_free(c);
#endif
}

TEST(SmallAlloc, ReallocKeepsTheBytes) {
  auto* p = static_cast<char*>(small_realloc(nullptr, 10));
  ASSERT_NE(p, nullptr);
  std::memcpy(p, "0123456789", 10);
  p = static_cast<char*>(small_realloc(p, 40));  // fits the block it has
  EXPECT_EQ(std::memcmp(p, "0123456789", 10), 0);
  p = static_cast<char*>(small_realloc(p, 5000));  // moves to a malloc'd block
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::memcmp(p, "0123456789", 10), 0);
  std::memset(p + 10, 'x', 4990);
  p = static_cast<char*>(small_realloc(p, 20));  // shrinking keeps the block
  EXPECT_EQ(std::memcmp(p, "0123456789xxxxxxxxxx", 20), 0);
  EXPECT_EQ(small_realloc(p, 0), nullptr);  // frees
}

}  // namespace
}  // namespace sidecar::core
