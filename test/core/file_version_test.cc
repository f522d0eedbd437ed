#include "core/file_version.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

namespace sidecar::core {
namespace {

std::string temp_path() {
  char name[] = "/tmp/sidecar-file-version-XXXXXX";
  const int fd = ::mkstemp(name);
  EXPECT_GE(fd, 0);
  ::close(fd);
  return name;
}

void write(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

TEST(ReadFile, WholeFileBytesUnchanged) {
  const std::string path = temp_path();
  std::string bytes(40000, 'x');  // more than one read
  bytes[3] = '\0';
  bytes[39999] = '\n';
  write(path, bytes);
  std::string out = "old";
  ASSERT_TRUE(read_file(path, out));
  EXPECT_EQ(out, bytes);
  write(path, "");
  ASSERT_TRUE(read_file(path, out));
  EXPECT_TRUE(out.empty());
  ::unlink(path.c_str());
  errno = 0;
  EXPECT_FALSE(read_file(path, out));
  EXPECT_EQ(errno, ENOENT);
  EXPECT_FALSE(read_file("/", out));  // a directory: read() fails
  EXPECT_EQ(errno, EISDIR);
}

TEST(FileVersion, ChangeUnreadableAndBack) {
  const std::string path = temp_path();
  FileVersion v;
  EXPECT_EQ(v.check(path), FileVersion::Check::kChanged);  // the first look
  EXPECT_EQ(v.check(path), FileVersion::Check::kUnchanged);
  write(path, "abc");
  EXPECT_EQ(v.check(path), FileVersion::Check::kChanged);
  EXPECT_EQ(v.size(), 3u);
  ::unlink(path.c_str());
  EXPECT_EQ(v.check(path), FileVersion::Check::kUnreadable);
  EXPECT_EQ(v.check(path), FileVersion::Check::kStillUnreadable);
  write(path, "abc");
  EXPECT_EQ(v.check(path), FileVersion::Check::kChanged);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace sidecar::core
