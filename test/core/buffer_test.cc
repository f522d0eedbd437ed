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
