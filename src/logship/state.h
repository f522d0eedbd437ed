// The state directory: checkpoints of the files being read, the read
// journal that bounds and counts duplicates after a crash, and small file
// helpers (docs/logship.md "State directory").
//
//   <state_dir>/checkpoints.json   per file: identity and the offset of the
//                                  last byte whose lines were acknowledged;
//                                  written to a temporary file, fsynced (when
//                                  `fsync`), renamed over the old one
//   <state_dir>/read.journal       per open file, how far it was read
//                                  (pwrite of fixed slots, no fsync: it only
//                                  has to survive a killed process); emptied
//                                  on a clean stop
//   <state_dir>/buffer/<output>/   chunk files (buffer.h)
//   <state_dir>/dead_letter/<output>.ndjson   records a receiver rejected
//
// Thread safety: the shipper thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace sidecar::logship {

// mkdir -p; false on failure.
bool make_dirs(const std::string& path);
// Writes `data` to path.tmp, fsyncs it (when `fsync`), renames it to `path`.
bool write_file_atomic(const std::string& path, std::string_view data, bool fsync);
bool read_file(const std::string& path, std::string& out);

// A file's identity: device, inode, and a hash of its first bytes (inode
// numbers are reused, in containers often at once).
struct FileId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t fingerprint = 0;       // FNV-1a 64 of the first fingerprint_size bytes
  uint32_t fingerprint_size = 0;  // 0: the file was empty when first seen
  bool operator==(const FileId&) const = default;
  auto key() const { return std::tuple(dev, ino, fingerprint, fingerprint_size); }
};

uint64_t fnv1a(std::string_view data);

struct FileCheckpoint {
  std::string input;
  std::string path;
  FileId id;
  uint64_t offset = 0;
};

class StateStore {
 public:
  StateStore(std::string dir, bool fsync) : dir_(std::move(dir)), fsync_(fsync) {}
  ~StateStore();

  // Creates the directory and loads what a previous run left. False (with
  // `error`) when the directory cannot be used.
  bool open(std::string& error);
  const std::string& dir() const { return dir_; }
  const std::vector<FileCheckpoint>& loaded() const { return loaded_; }
  // Whether the previous run stopped cleanly (or there was none).
  bool clean_start() const { return clean_start_; }
  // How far the previous run had read a file (0: unknown).
  uint64_t journal_read(const FileId& id) const;

  bool save(const std::vector<FileCheckpoint>& files, bool clean);

  // The read journal: a slot per open file.
  uint32_t journal_slot();
  void journal_free(uint32_t slot);
  void journal_write(uint32_t slot, const FileId& id, uint64_t read_offset);
  void journal_clear();

 private:
  std::string dir_;
  bool fsync_;
  std::vector<FileCheckpoint> loaded_;
  bool clean_start_ = true;
  std::map<std::tuple<uint64_t, uint64_t, uint64_t, uint32_t>, uint64_t> journal_;
  int journal_fd_ = -1;
  std::vector<uint32_t> free_slots_;
  uint32_t next_slot_ = 0;
  std::string scratch_;
};

}  // namespace sidecar::logship
