// The buffer of one output: a bounded in-memory queue of batches, spilling
// to chunk files in the state directory (`buffer: { type: disk }`).
//
// Order is kept: once anything is on disk, new batches go to disk too until
// the disk part has drained. A batch written to disk is released at once
// (the chunk file is durable, so the input's checkpoint may pass it); a
// chunk file is deleted when the output acknowledged its records. Chunk
// files left by a previous run are delivered first. The chunk format is in
// docs/logship.md "Chunk files".
//
// When full (memory_size in memory mode, max_size on disk, or a disk that
// refuses writes): `block` makes full() true so that inputs stop reading;
// `drop_oldest` drops the oldest batch (counted).
//
// Thread safety: the shipper thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "logship/config.h"
#include "logship/record.h"

namespace sidecar::logship {

// Chunk files (exposed for tests and the fuzz-free round trip).
// Serializes `b` (records, fields, arena, tag) into `out`.
void encode_chunk(const Batch& b, std::string& out);
// Parses a chunk; false when it is not one (bad magic, size or checksum).
bool decode_chunk(std::string_view data, Batch& out);

class OutputBuffer {
 public:
  struct Counters {
    uint64_t dropped_records = 0;  // drop_oldest
    uint64_t full_events = 0;      // times it became full
    uint64_t disk_errors = 0;      // chunk writes that failed (full disk)
    uint64_t chunks_written = 0;
    uint64_t chunks_read = 0;
    uint64_t corrupt_chunks = 0;
  };

  // `dir`: this output's chunk folder (created when disk is configured).
  OutputBuffer(const BufferConfig& config, std::string dir, bool fsync);
  ~OutputBuffer();

  // Loads the chunk files a previous run left (disk mode).
  void recover();
  // Queues a batch (the caller took a hold on it for this output).
  void push(std::shared_ptr<Batch> batch);
  // Puts a batch back at the front (a retry of part of a request).
  void push_front(std::shared_ptr<Batch> batch);
  // Whether inputs should wait (block policy).
  bool full() const { return full_; }
  bool empty() const { return memory_.empty() && disk_.empty() && tail_.empty(); }
  // The batch at position `i` of the queue (0: oldest), loading chunks
  // from disk as needed; nullptr past the end.
  std::shared_ptr<Batch> peek(size_t i);
  // Removes the oldest `n` batches (the output acknowledged them) and
  // releases them.
  void pop(size_t n);
  // Retries spilling after a disk error (called on a timer).
  void retry_spill();
  // Writes what is in memory to disk (stop: nothing is lost across a restart).
  void spill_all();

  // How many batches at the front the output is sending (never dropped).
  void set_in_flight(size_t n) { in_flight_ = n; }

  uint64_t memory_bytes() const { return memory_bytes_; }
  uint64_t disk_bytes() const { return *disk_bytes_shared_; }
  size_t batches() const { return memory_.size() + disk_.size() + tail_.size(); }
  const Counters& counters() const { return counters_; }

 private:
  struct DiskChunk {
    std::string path;
    uint64_t bytes = 0;
  };
  bool spill(const std::shared_ptr<Batch>& batch);
  void update_full();
  void drop_oldest();

  BufferConfig config_;
  std::string dir_;
  bool fsync_;
  std::deque<std::shared_ptr<Batch>> memory_;  // the oldest
  std::deque<DiskChunk> disk_;                 // newer than everything in memory_
  std::deque<std::shared_ptr<Batch>> tail_;    // newest: waiting for room on disk
  size_t in_flight_ = 0;
  uint64_t memory_bytes_ = 0;
  std::shared_ptr<uint64_t> disk_bytes_shared_;  // shared with the chunk files' sinks
  uint64_t next_chunk_ = 1;
  bool full_ = false;
  bool disk_failed_ = false;
  Counters counters_;
  std::string scratch_;
};

}  // namespace sidecar::logship
