// Files the process reads whole: noticing that one changed, for the stores
// that reload one (API keys, htpasswd, local JWKS, credential files,
// certificates), and reading it.
//
// Thread safety: FileVersion none (each store calls it under its own lock);
// read_file is reentrant.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>

namespace sidecar::core {

// Reads the whole file at `path` into `out` (its bytes, unchanged). False,
// with errno set and `out` unspecified, when it cannot be opened or read.
bool read_file(const std::string& path, std::string& out);

// A file's version: its inode, size and modification time (nanoseconds). A
// new inode catches a rename over the file, the way Kubernetes' atomic
// writer and most editors replace it.
class FileVersion {
 public:
  enum class Check {
    kUnchanged,        // the version seen last time
    kChanged,          // another version (or the first look): read it
    kUnreadable,       // stat() failed now and not last time: say so once
    kStillUnreadable,  // stat() failed again
  };
  // stat()s `path`. An unreadable file forgets the version, so that it
  // reads as changed when it comes back.
  Check check(const std::string& path);
  // The size in bytes found by the last check that saw the file.
  uint64_t size() const { return size_ < 0 ? 0 : static_cast<uint64_t>(size_); }

 private:
  time_t mtime_ = 0;
  long mtime_ns_ = 0;
  off_t size_ = -1;
  ino_t inode_ = 0;
  bool unreadable_ = false;
};

}  // namespace sidecar::core
