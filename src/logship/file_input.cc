#include "logship/file_input.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/json.h"

namespace sidecar::logship {

namespace asio = boost::asio;

namespace {

constexpr size_t kChunk = 256 * 1024;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

}  // namespace

struct FileInput::File {
  explicit File(const InputConfig& c) : line(c) {}
  std::string path;
  int fd = -1;
  FileId id;
  uint64_t read_offset = 0;
  uint64_t size = 0;
  bool rotated = false;       // the path no longer leads here (renamed or deleted)
  int64_t idle_since_ms = 0;  // rotated and at its end since
  bool dirty = true;          // may have data to read
  std::shared_ptr<Tracker> tracker = std::make_shared<Tracker>();
  LineState line;
  BatchBuilder builder;
  uint32_t slot = 0;
};

FileInput::FileInput(Pipeline& pipeline, InputRuntime& input, bool first_start)
    : pipeline_(pipeline), input_(input), config_(input.config.file), poll_timer_(pipeline.io()) {
  first_scan_ = true;
  (void)first_start;
  for (const FileCheckpoint& c : pipeline.state().loaded()) {
    if (c.input == input.config.name) unmatched_.push_back(c);
  }
}

FileInput::~FileInput() {
  for (auto& f : files_) {
    if (f->fd >= 0) ::close(f->fd);
  }
  if (inotify_) {
    boost::system::error_code ec;
    inotify_->close(ec);
  } else if (inotify_fd_ >= 0) {
    ::close(inotify_fd_);
  }
}

void FileInput::start() {
  watch_inotify();
  scan();
  rescue_rotated();
  first_scan_ = false;
  poll();
}

bool FileInput::excluded(const std::string& path) const {
  const std::string name = path.substr(path.rfind('/') + 1);
  for (const std::string& pattern : config_.exclude) {
    if (::fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0 ||
        ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

bool FileInput::fingerprint(int fd, uint64_t size, FileId& id) const {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(size, config_.fingerprint_size));
  id.fingerprint_size = static_cast<uint32_t>(n);
  id.fingerprint = 0;
  if (n == 0) return true;
  std::string head(n, '\0');
  const ssize_t got = ::pread(fd, head.data(), n, 0);
  if (got != static_cast<ssize_t>(n)) return false;
  id.fingerprint = fnv1a(head);
  return true;
}

void FileInput::watch_inotify() {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    spdlog::info("logs: inotify unavailable ({}); input {} polls every {}ms", std::strerror(errno),
                 input_.config.name, config_.poll_interval.count());
    return;
  }
  std::set<std::string> dirs;
  for (const std::string& p : config_.paths) {
    const std::string dir = dir_of(p);
    if (!has_glob(dir)) dirs.insert(dir);
  }
  for (const std::string& dir : dirs) {
    const int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(),
                                       IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                           IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB);
    if (wd >= 0) watches_[wd] = dir;
  }
  inotify_ = std::make_unique<asio::posix::stream_descriptor>(pipeline_.io(), inotify_fd_);
  on_inotify();
}

void FileInput::on_inotify() {
  inotify_->async_wait(asio::posix::stream_descriptor::wait_read,
                       [this](const boost::system::error_code& ec) {
                         if (ec) return;
                         handle_inotify_events();
                         pipeline_.wake();
                         on_inotify();
                       });
}

bool FileInput::matches(const std::string& path) const {
  for (const std::string& pattern : config_.paths) {
    if (::fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0) return !excluded(path);
  }
  return false;
}

void FileInput::handle_inotify_events() {
  std::map<uint32_t, std::string> moved_from;  // cookie -> old path
  std::vector<std::string> moved_out;          // matching name -> not matching
  while (true) {
    const ssize_t n = ::read(inotify_fd_, inotify_buf_, sizeof(inotify_buf_));
    if (n <= 0) break;
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(inotify_buf_ + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      if (e->mask &
          (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_Q_OVERFLOW | IN_ATTRIB)) {
        scan_needed_ = true;
      }
      auto w = watches_.find(e->wd);
      if (e->len == 0 || w == watches_.end()) continue;
      const std::string path = w->second + "/" + e->name;
      if (e->mask & IN_MOVED_FROM) moved_from[e->cookie] = path;
      if (e->mask & IN_MOVED_TO) {
        auto from = moved_from.find(e->cookie);
        if (from != moved_from.end() && matches(from->second) && !matches(path)) {
          moved_out.push_back(path);
        }
      }
      for (auto& f : files_) {
        if (f->path == path) f->dirty = true;
      }
    }
  }
  if (scan_needed_) {
    scan_needed_ = false;
    scan();
  }
  // A file renamed away from a matching name before a scan saw it (many
  // rotations a second): read it as a rotated file.
  for (const std::string& path : moved_out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    bool known = done_.count({st.st_dev, st.st_ino}) > 0;
    for (auto& f : files_) known = known || (f->id.dev == st.st_dev && f->id.ino == st.st_ino);
    if (known) continue;
    open_file(path, st, false);
    if (!files_.empty() && files_.back()->path == path) files_.back()->rotated = true;
  }
}

void FileInput::poll() {
  // Growth, truncation, rotation of the open files, and new files.
  for (auto& f : files_) {
    if (f->fd < 0) continue;
    struct stat st {};
    if (::fstat(f->fd, &st) != 0) continue;
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size != f->read_offset) f->dirty = true;
    if (!f->rotated) {
      struct stat now {};
      if (st.st_nlink == 0 || ::stat(f->path.c_str(), &now) != 0 || now.st_ino != st.st_ino ||
          now.st_dev != st.st_dev) {
        f->rotated = true;
        f->dirty = true;
        f->idle_since_ms = 0;
      }
    }
  }
  scan();
  pipeline_.wake();
  poll_timer_.expires_after(config_.poll_interval);
  poll_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) poll();
  });
}

void FileInput::scan() {
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (const std::string& pattern : config_.paths) {
    glob_t g{};
    if (::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        const std::string path = g.gl_pathv[i];
        if (excluded(path)) continue;
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        const auto key = std::pair<uint64_t, uint64_t>(st.st_dev, st.st_ino);
        seen.insert(key);
        bool known = false;
        for (auto& f : files_) {
          if (f->id.dev == key.first && f->id.ino == key.second) {
            known = true;
            if (f->path != path && f->rotated) f->path = path;  // renamed within the globs
            if (static_cast<uint64_t>(st.st_size) != f->read_offset) f->dirty = true;
          }
        }
        if (known) continue;
        if (auto it = done_.find(key); it != done_.end()) {
          // Read to its end before; the same file unless the inode was reused.
          bool same = false;
          const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd >= 0) {
            const size_t n = it->second.id.fingerprint_size;
            std::string head(n, '\0');
            same = static_cast<uint64_t>(st.st_size) >= n &&
                   (n == 0 || (::pread(fd, head.data(), n, 0) == static_cast<ssize_t>(n) &&
                               fnv1a(head) == it->second.id.fingerprint));
            ::close(fd);
          }
          if (same && static_cast<uint64_t>(st.st_size) <= it->second.offset) continue;
          if (!same) done_.erase(it);
          // A file that grew after we closed it, or a new one on a reused inode.
        }
        open_file(path, st, first_scan_);
      }
    }
    ::globfree(&g);
  }
  // Forget closed files no glob finds any more.
  for (auto it = done_.begin(); it != done_.end();) {
    it = seen.count(it->first) ? std::next(it) : done_.erase(it);
  }
}

void FileInput::open_file(const std::string& path, const struct stat& st, bool first_scan) {
  if (files_.size() >= config_.max_open_files) {
    spdlog::warn("logs: input {}: max_open_files ({}) reached; not opening {}", input_.config.name,
                 config_.max_open_files, path);
    return;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("logs: cannot open {}: {}", path, std::strerror(errno));
    return;
  }
  struct stat now {};
  ::fstat(fd, &now);
  auto f = std::make_unique<File>(input_.config);
  f->path = path;
  f->fd = fd;
  f->id.dev = now.st_dev;
  f->id.ino = now.st_ino;
  f->size = static_cast<uint64_t>(now.st_size);
  fingerprint(fd, f->size, f->id);
  // A checkpoint for it: the same device and inode, and the same first bytes.
  bool resumed = false;
  auto done = done_.find({f->id.dev, f->id.ino});
  for (auto it = unmatched_.begin(); it != unmatched_.end(); ++it) {
    if (it->id.dev != f->id.dev || it->id.ino != f->id.ino) continue;
    FileId probe = f->id;
    if (it->id.fingerprint_size != probe.fingerprint_size) {
      if (f->size < it->id.fingerprint_size) continue;
      std::string head(it->id.fingerprint_size, '\0');
      if (::pread(fd, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size())) continue;
      probe.fingerprint = fnv1a(head);
      probe.fingerprint_size = it->id.fingerprint_size;
    }
    if (probe.fingerprint != it->id.fingerprint) continue;
    f->id = probe;  // keep the identity the checkpoint knows
    f->read_offset = std::min(it->offset, f->size);
    const uint64_t journal = pipeline_.state().journal_read(it->id);
    if (journal > f->read_offset) f->line.replay_until = journal;
    unmatched_.erase(it);
    resumed = true;
    break;
  }
  if (!resumed && done != done_.end()) {
    f->read_offset = std::min(done->second.offset, f->size);  // it grew after we closed it
    done_.erase(done);
    resumed = true;
  }
  if (!resumed) {
    f->read_offset = first_scan && !config_.read_from_head ? f->size : 0;
    if (f->read_offset > 0) {
      // Reading from the tail: start after the last complete line.
      char c = 0;
      while (f->read_offset > 0 &&
             ::pread(fd, &c, 1, static_cast<off_t>(f->read_offset - 1)) == 1 && c != '\n') {
        --f->read_offset;
      }
    }
  }
  f->tracker->committed = f->read_offset;
  f->line.multiline_start = f->read_offset;
  f->slot = pipeline_.state().journal_slot();
  spdlog::debug("logs: input {} reads {} (inode {}) from offset {}", input_.config.name, path,
                f->id.ino, f->read_offset);
  files_.push_back(std::move(f));
  pipeline_.checkpoint_dirty_ = true;
}

void FileInput::rescue_rotated() {
  // Files of the last run that no glob finds any more: rotated while we
  // were down. Look for them in their directory and read what is left.
  for (const FileCheckpoint& c : unmatched_) {
    const std::string dir = dir_of(c.path);
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      const std::string path = dir + "/" + e->d_name;
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (st.st_dev != c.id.dev || st.st_ino != c.id.ino) continue;
      if (static_cast<uint64_t>(st.st_size) <= c.offset || excluded(path)) break;
      const size_t before = files_.size();
      open_file(path, st, false);
      if (files_.size() > before) {
        File& f = *files_.back();
        if (f.read_offset == 0 && c.offset > 0) {
          // open_file did not recognise it (fingerprint): leave it alone.
          ::close(f.fd);
          pipeline_.state().journal_free(f.slot);
          files_.pop_back();
        } else {
          f.rotated = true;
          spdlog::info("logs: {} was rotated to {}; reading it from offset {}", c.path, path,
                       f.read_offset);
        }
      }
      break;
    }
    ::closedir(d);
  }
  unmatched_.clear();
}

bool FileInput::read_some() {
  bool more = false;
  for (size_t i = 0; i < files_.size(); ++i) {
    if (!pipeline_.can_read(input_)) return false;
    File& f = *files_[i];
    if (!f.dirty || f.fd < 0) continue;
    more = read_file(f) || more;
  }
  return more;
}

bool FileInput::read_file(File& f) {
  const size_t partial = f.line.partial.size();
  const size_t chunk = std::max(kChunk, partial);
  if (read_buf_.size() < partial + chunk + kPadding) read_buf_.resize(partial + chunk + kPadding);
  std::memcpy(read_buf_.data(), f.line.partial.data(), partial);
  ssize_t n;
  do {
    n = ::pread(f.fd, read_buf_.data() + partial, chunk, static_cast<off_t>(f.read_offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    spdlog::warn("logs: read {}: {}", f.path, std::strerror(errno));
    f.dirty = false;
    return false;
  }
  if (n == 0) {
    f.dirty = false;
    struct stat st {};
    if (::fstat(f.fd, &st) == 0) {
      f.size = static_cast<uint64_t>(st.st_size);
      if (f.size < f.read_offset) {
        handle_truncation(f, f.size);
        return true;
      }
    }
    if (f.rotated && f.idle_since_ms == 0) f.idle_since_ms = steady_ms();
    return false;
  }
  f.idle_since_ms = 0;
  f.read_offset += static_cast<uint64_t>(n);
  f.size = std::max(f.size, f.read_offset);
  if (f.id.fingerprint_size == 0) fingerprint(f.fd, f.read_offset, f.id);  // was empty
  std::memset(read_buf_.data() + partial + n, 0, kPadding);
  bump(input_.counters.bytes, static_cast<uint64_t>(n));
  pipeline_.feed(input_, f.line, f.builder, read_buf_.data(), partial + static_cast<size_t>(n),
                 f.read_offset, false, f.path);
  if (!f.builder.tracker) f.builder.tracker = f.tracker;
  pipeline_.flush(input_, f.line, f.builder, f.read_offset);
  pipeline_.state().journal_write(f.slot, f.id, f.read_offset);
  pipeline_.checkpoint_dirty_ = true;
  if (read_buf_.size() > 4 * (kChunk + kPadding) && partial + n < kChunk) {
    std::vector<char>().swap(read_buf_);  // after a giant line
  }
  return static_cast<size_t>(n) == chunk;
}

bool FileInput::read_copy(File& f, const std::string& dir, uint64_t from) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    const std::string path = dir + "/" + e->d_name;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (st.st_ino == f.id.ino && st.st_dev == f.id.dev) continue;
    if (static_cast<uint64_t>(st.st_size) < from || f.id.fingerprint_size == 0) continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::string head(f.id.fingerprint_size, '\0');
    if (::pread(fd, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size()) ||
        fnv1a(head) != f.id.fingerprint) {
      ::close(fd);
      continue;
    }
    // The copy of a copytruncate: read what we had not read yet.
    uint64_t offset = from;
    const auto size = static_cast<uint64_t>(st.st_size);
    while (offset < size) {
      const size_t partial = f.line.partial.size();
      const size_t chunk = static_cast<size_t>(std::min<uint64_t>(kChunk, size - offset));
      if (read_buf_.size() < partial + chunk + kPadding)
        read_buf_.resize(partial + chunk + kPadding);
      std::memcpy(read_buf_.data(), f.line.partial.data(), partial);
      const ssize_t n = ::pread(fd, read_buf_.data() + partial, chunk, static_cast<off_t>(offset));
      if (n <= 0) break;
      offset += static_cast<uint64_t>(n);
      std::memset(read_buf_.data() + partial + n, 0, kPadding);
      bump(input_.counters.bytes, static_cast<uint64_t>(n));
      pipeline_.feed(input_, f.line, f.builder, read_buf_.data(), partial + static_cast<size_t>(n),
                     offset, offset == size, f.path);
      if (!f.builder.tracker) f.builder.tracker = f.tracker;
      pipeline_.flush(input_, f.line, f.builder, offset);
    }
    ::close(fd);
    spdlog::info("logs: {} was truncated (copytruncate): read bytes {}..{} from the copy {}",
                 f.path, from, offset, path);
    found = true;
    break;
  }
  ::closedir(d);
  return found;
}

void FileInput::handle_truncation(File& f, uint64_t new_size) {
  if (!read_copy(f, dir_of(f.path), f.read_offset)) {
    spdlog::info("logs: {} was truncated from {} to {} bytes; reading it from the start", f.path,
                 f.read_offset, new_size);
  }
  // What multiline or CRI partials still hold belongs to the old content.
  pipeline_.flush_expired(input_, f.line, f.builder, f.read_offset, true, f.path);
  pipeline_.flush(input_, f.line, f.builder, f.read_offset);
  f.line.partial.clear();
  f.line.discarding = false;
  // A new generation: acknowledgements of the old content no longer move
  // this file's checkpoint.
  f.tracker = std::make_shared<Tracker>();
  f.builder = {};
  f.read_offset = 0;
  f.line.multiline_start = 0;
  f.line.replay_until = 0;
  f.id.fingerprint_size = 0;
  fingerprint(f.fd, new_size, f.id);
  f.dirty = true;
  pipeline_.checkpoint_dirty_ = true;
}

void FileInput::on_tick(bool force_flush) {
  const int64_t now = steady_ms();
  for (size_t i = 0; i < files_.size();) {
    File& f = *files_[i];
    pipeline_.flush_expired(input_, f.line, f.builder, f.read_offset, force_flush, f.path);
    if (f.builder.batch || f.line.multiline.pending()) {
      pipeline_.flush(input_, f.line, f.builder, f.read_offset);
    }
    if (f.rotated && f.idle_since_ms > 0 && !f.dirty &&
        now - f.idle_since_ms >= config_.rotate_wait.count()) {
      close_file(i);
      continue;
    }
    ++i;
  }
}

void FileInput::close_file(size_t index) {
  File& f = *files_[index];
  spdlog::debug("logs: done with {} (inode {}) at offset {}", f.path, f.id.ino, f.read_offset);
  if (f.fd >= 0) ::close(f.fd);
  pipeline_.state().journal_free(f.slot);
  FileCheckpoint c{input_.config.name, f.path, f.id, f.read_offset};
  done_[{f.id.dev, f.id.ino}] = c;
  files_.erase(files_.begin() + static_cast<std::ptrdiff_t>(index));
  pipeline_.checkpoint_dirty_ = true;
}

bool FileInput::drained() const {
  for (const auto& f : files_) {
    if (f->dirty && f->fd >= 0) return false;
  }
  return true;
}

void FileInput::flush_all() {
  for (auto& f : files_) {
    pipeline_.flush_expired(input_, f->line, f->builder, f->read_offset, true, f->path);
    pipeline_.flush(input_, f->line, f->builder, f->read_offset);
  }
}

void FileInput::checkpoints(std::vector<FileCheckpoint>& out) const {
  for (const auto& f : files_) {
    out.push_back({input_.config.name, f->path, f->id, f->tracker->committed});
  }
  for (const auto& [key, c] : done_) out.push_back(c);
}

uint64_t FileInput::lag_bytes() const {
  uint64_t lag = 0;
  for (const auto& f : files_)
    lag += f->size > f->tracker->committed ? f->size - f->tracker->committed : 0;
  return lag;
}

size_t FileInput::open_files() const { return files_.size(); }

void FileInput::status_json(std::string& b) const {
  b += "[";
  for (size_t i = 0; i < files_.size(); ++i) {
    const File& f = *files_[i];
    if (i > 0) b += ',';
    b += "{\"path\":";
    core::append_json_string(b, f.path);
    const uint64_t lag = f.size > f.tracker->committed ? f.size - f.tracker->committed : 0;
    b += fmt::format(
        ",\"inode\":{},\"offset\":{},\"read\":{},\"size\":{},\"lag_bytes\":{},\"rotated\":{}}}",
        f.id.ino, f.tracker->committed, f.read_offset, f.size, lag, f.rotated ? "true" : "false");
  }
  b += "]";
}

}  // namespace sidecar::logship
