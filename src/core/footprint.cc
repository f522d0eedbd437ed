#include "core/footprint.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace sidecar::core {
namespace {

struct Mapping {
  uintptr_t begin = 0;
  uintptr_t end = 0;
  bool write = false;
  bool file = false;
  bool clean = true;  // no private (anonymous) pages: Anonymous: 0 kB
};

// The mappings of /proc/self/smaps, with what release_startup_pages needs.
std::vector<Mapping> mappings() {
  std::vector<Mapping> out;
  FILE* f = std::fopen("/proc/self/smaps", "re");
  if (f == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long begin = 0, end = 0, inode = 0;
    char perms[5] = {};
    char path[256] = {};
    // "begin-end perms offset dev inode path"
    if (std::sscanf(line, "%lx-%lx %4s %*s %*s %lu %255s", &begin, &end, perms, &inode, path) >=
        4) {
      Mapping m;
      m.begin = begin;
      m.end = end;
      m.write = perms[1] == 'w';
      m.file = inode != 0 && path[0] == '/';
      out.push_back(m);
      continue;
    }
    if (!out.empty() && std::strncmp(line, "Anonymous:", 10) == 0) {
      out.back().clean = std::strtoul(line + 10, nullptr, 10) == 0;
    }
  }
  std::fclose(f);
  return out;
}

}  // namespace

void release_startup_pages() {
  for (const Mapping& m : mappings()) {
    // A written page of a private file mapping is a private copy that
    // MADV_DONTNEED would throw away: only read-only, unmodified mappings.
    if (!m.file || m.write || !m.clean) continue;
    ::madvise(reinterpret_cast<void*>(m.begin), m.end - m.begin, MADV_DONTNEED);
  }
}

}  // namespace sidecar::core
