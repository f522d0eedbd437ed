#include "core/file_version.h"

#include <sys/stat.h>

namespace sidecar::core {

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
