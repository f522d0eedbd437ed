#include "core/file_version.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace sidecar::core {

bool read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out.clear();
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      const int e = errno;
      ::close(fd);
      errno = e;
      return false;
    }
  }
  ::close(fd);
  return true;
}

FileVersion::Check FileVersion::check(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    size_ = -1;
    const bool was = unreadable_;
    unreadable_ = true;
    return was ? Check::kStillUnreadable : Check::kUnreadable;
  }
  unreadable_ = false;
  if (st.st_mtim.tv_sec == mtime_ && st.st_mtim.tv_nsec == mtime_ns_ && st.st_size == size_ &&
      st.st_ino == inode_) {
    return Check::kUnchanged;
  }
  mtime_ = st.st_mtim.tv_sec;
  mtime_ns_ = st.st_mtim.tv_nsec;
  size_ = st.st_size;
  inode_ = st.st_ino;
  return Check::kChanged;
}

}  // namespace sidecar::core
