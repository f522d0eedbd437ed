#include "core/buffer.h"

#include <gtest/gtest.h>

#include <cstring>

namespace sidecar::core {
namespace {

void put(Buffer& b, std::string_view s) {
  ASSERT_GE(b.write_space(), s.size());
  std::memcpy(b.write_ptr(), s.data(), s.size());
  b.commit(s.size());
}

TEST(Buffer, CommitConsumeCompact) {
  Buffer b(8);
  put(b, "abcdef");
  EXPECT_EQ(b.readable(), "abcdef");
  b.consume(4);
  EXPECT_EQ(b.readable(), "ef");
  EXPECT_EQ(b.write_space(), 2u);
  b.compact();
  EXPECT_EQ(b.readable(), "ef");
  EXPECT_EQ(b.write_space(), 6u);
  b.consume(2);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.write_space(), 8u);  // fully consumed: back to the start
}

TEST(Buffer, ReserveKeepsTheReadableBytes) {
  Buffer b(4);
  put(b, "wxyz");
  b.consume(1);
  b.reserve(16);
  EXPECT_EQ(b.readable(), "xyz");
  EXPECT_EQ(b.capacity(), 16u);
  EXPECT_EQ(b.write_space(), 13u);
  b.reserve(8);  // never shrinks
  EXPECT_EQ(b.capacity(), 16u);
}

}  // namespace
}  // namespace sidecar::core

namespace sidecar::core {
namespace {

constexpr size_t kBlock = BufferPool::kBlockSize;

TEST(BufferPool, BlocksAreReusedAndCounted) {
  BufferPool pool(2);
  auto a = pool.take();
  const char* first = a.get();
  EXPECT_EQ(pool.in_use(), 1);
  pool.give(std::move(a));
  EXPECT_EQ(pool.in_use(), 0);
  EXPECT_EQ(pool.free_blocks(), 1u);
  auto b = pool.take();
  EXPECT_EQ(b.get(), first);  // the same block again
  auto c = pool.take();
  auto d = pool.take();
  EXPECT_EQ(pool.in_use(), 3);
  pool.give(std::move(b));
  pool.give(std::move(c));
  pool.give(std::move(d));  // beyond max_free: freed
  EXPECT_EQ(pool.free_blocks(), 2u);
  EXPECT_EQ(pool.in_use(), 0);
}

TEST(Buffer, PooledBlockIsTakenAndReleased) {
  BufferPool& pool = BufferPool::local();
  const int64_t before = pool.in_use();
  {
    Buffer b;
    EXPECT_FALSE(b.has_storage());
    EXPECT_EQ(b.write_space(), 0u);
    b.reserve(kBlock);
    EXPECT_TRUE(b.has_storage());
    EXPECT_EQ(b.capacity(), kBlock);
    EXPECT_EQ(pool.in_use(), before + 1);
    put(b, "abc");
    EXPECT_FALSE(b.release());  // bytes buffered: kept
    EXPECT_EQ(b.readable(), "abc");
    b.consume(3);
    EXPECT_TRUE(b.release());
    EXPECT_FALSE(b.has_storage());
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(pool.in_use(), before);
    b.reserve(kBlock);  // taken again, from the free list
    EXPECT_EQ(pool.in_use(), before + 1);
  }  // destroyed: given back
  EXPECT_EQ(pool.in_use(), before);
}

TEST(Buffer, GrowingGivesThePooledBlockBack) {
  BufferPool& pool = BufferPool::local();
  const int64_t before = pool.in_use();
  Buffer b(kBlock);
  put(b, "head");
  b.reserve(2 * kBlock);
  EXPECT_EQ(b.readable(), "head");
  EXPECT_EQ(b.capacity(), 2 * kBlock);
  EXPECT_EQ(pool.in_use(), before);  // the 16 KiB block went back
  Buffer moved(std::move(b));
  EXPECT_EQ(moved.readable(), "head");
  EXPECT_FALSE(b.has_storage());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

}  // namespace
}  // namespace sidecar::core
