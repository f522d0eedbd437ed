// The `file` input: tails the files matching its globs.
//
// - Discovery: glob(3) every poll_interval and when inotify reports a new
//   name in a watched directory (the directories of the patterns); inotify
//   events also say which files grew. Where inotify is not delivered
//   (some network and overlay volumes), polling alone finds everything.
// - Identity: device, inode and a hash of the first fingerprint_size bytes,
//   so that a reused inode is a new file.
// - Rotation by rename (or deletion): the open file is read to its end, and
//   closed after rotate_wait without growth; the new file at the path is
//   read from its start.
// - Copytruncate: a file smaller than what was read was truncated; the rest
//   of its old content is read from the copy when one is in the same
//   directory (same fingerprint, large enough), then the file is read
//   again from offset 0.
// - Checkpoints: restarts resume at the last acknowledged offset; a file
//   rotated out of the globs while the sidecar was down is found in its
//   directory by its identity and read to its end.
//
// Thread safety: the shipper thread only.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "logship/pipeline.h"

namespace sidecar::logship {

class FileInput {
 public:
  FileInput(Pipeline& pipeline, InputRuntime& input, bool first_start);
  ~FileInput();

  void start();
  // Reads up to one chunk from each file with data; true when some file may
  // have more right away.
  bool read_some();
  // Multiline records that waited long enough, rotated files to close.
  void on_tick(bool force_flush);
  // Draining: whether everything has been read (to the current ends).
  bool drained() const;
  // Emits what multiline and CRI partials hold (stop).
  void flush_all();
  void checkpoints(std::vector<FileCheckpoint>& out) const;
  void status_json(std::string& out) const;
  uint64_t lag_bytes() const;
  size_t open_files() const;
  InputRuntime& input() { return input_; }

 private:
  struct File;
  void scan();
  void poll();
  void watch_inotify();
  void on_inotify();
  void handle_inotify_events();
  bool matches(const std::string& path) const;
  void open_file(const std::string& path, const struct stat& st, bool first_scan);
  void rescue_rotated();
  bool read_file(File& f);
  void handle_truncation(File& f, uint64_t new_size);
  bool read_copy(File& f, const std::string& dir, uint64_t from);
  void close_file(size_t index);
  bool excluded(const std::string& path) const;
  bool fingerprint(int fd, uint64_t size, FileId& id) const;

  Pipeline& pipeline_;
  InputRuntime& input_;
  const FileInputConfig& config_;
  std::vector<std::unique_ptr<File>> files_;
  // Files read to their end and closed; kept while a glob still finds them,
  // so that they are not read again.
  std::map<std::pair<uint64_t, uint64_t>, FileCheckpoint> done_;
  std::vector<FileCheckpoint> unmatched_;  // checkpoints of the last run not found yet
  bool first_scan_ = true;
  int inotify_fd_ = -1;
  std::map<int, std::string> watches_;  // wd -> directory
  std::unique_ptr<boost::asio::posix::stream_descriptor> inotify_;
  char inotify_buf_[8192];
  boost::asio::steady_timer poll_timer_;
  bool scan_needed_ = false;
  std::vector<char> read_buf_;
};

}  // namespace sidecar::logship
