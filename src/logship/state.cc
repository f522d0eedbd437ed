#include "logship/state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include "core/json.h"

namespace sidecar::logship {
namespace {

constexpr size_t kSlotSize = 48;  // dev, ino, fingerprint, fingerprint_size, read offset, magic

}  // namespace

bool make_dirs(const std::string& path) {
  if (path.empty()) return false;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    const std::string prefix = path.substr(0, i);
    if (::mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) return false;
  }
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool write_file_atomic(const std::string& path, std::string_view data, bool fsync) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync && ::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out.clear();
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

uint64_t fnv1a(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

StateStore::~StateStore() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

bool StateStore::open(std::string& error) {
  if (!make_dirs(dir_)) {
    error = fmt::format("cannot create the state directory {}: {}", dir_, std::strerror(errno));
    return false;
  }
  std::string text;
  const std::string path = dir_ + "/checkpoints.json";
  if (read_file(path, text)) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array files;
    if (parser.parse(text).get(doc) || doc["files"].get_array().get(files)) {
      spdlog::warn("logs: {} is not valid; starting without checkpoints", path);
    } else {
      bool clean = true;
      if (doc["clean"].get_bool().get(clean)) clean = false;
      clean_start_ = clean;
      for (simdjson::dom::element f : files) {
        FileCheckpoint c;
        std::string_view s;
        uint64_t v = 0;
        if (!f["input"].get_string().get(s)) c.input = s;
        if (!f["path"].get_string().get(s)) c.path = s;
        if (!f["dev"].get_uint64().get(v)) c.id.dev = v;
        if (!f["ino"].get_uint64().get(v)) c.id.ino = v;
        if (!f["fingerprint"].get_string().get(s)) {
          c.id.fingerprint = std::strtoull(std::string(s).c_str(), nullptr, 16);
        }
        if (!f["fingerprint_size"].get_uint64().get(v))
          c.id.fingerprint_size = static_cast<uint32_t>(v);
        if (!f["offset"].get_uint64().get(v)) c.offset = v;
        loaded_.push_back(std::move(c));
      }
    }
  }
  // The read journal of the last run: present and not empty after a crash.
  const std::string jpath = dir_ + "/read.journal";
  std::string journal;
  if (read_file(jpath, journal)) {
    if (!journal.empty()) clean_start_ = false;
    for (size_t at = 0; at + kSlotSize <= journal.size(); at += kSlotSize) {
      uint64_t v[6];
      std::memcpy(v, journal.data() + at, sizeof(v));
      if (v[5] != 0x4a524e4c) continue;  // a free slot
      journal_[{v[0], v[1], v[2], static_cast<uint32_t>(v[3])}] = v[4];
    }
  }
  journal_fd_ = ::open(jpath.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (journal_fd_ < 0) {
    error = fmt::format("cannot write {}: {}", jpath, std::strerror(errno));
    return false;
  }
  return true;
}

uint64_t StateStore::journal_read(const FileId& id) const {
  auto it = journal_.find(id.key());
  return it == journal_.end() ? 0 : it->second;
}

bool StateStore::save(const std::vector<FileCheckpoint>& files, bool clean) {
  std::string& b = scratch_;
  b = fmt::format("{{\"version\":1,\"clean\":{},\"files\":[", clean ? "true" : "false");
  for (size_t i = 0; i < files.size(); ++i) {
    const FileCheckpoint& f = files[i];
    if (i > 0) b += ',';
    b += "\n{\"input\":";
    core::append_json_string(b, f.input);
    b += ",\"path\":";
    core::append_json_string(b, f.path);
    b += fmt::format(
        ",\"dev\":{},\"ino\":{},\"fingerprint\":\"{:016x}\",\"fingerprint_size\":{},"
        "\"offset\":{}}}",
        f.id.dev, f.id.ino, f.id.fingerprint, f.id.fingerprint_size, f.offset);
  }
  b += "\n]}\n";
  return write_file_atomic(dir_ + "/checkpoints.json", b, fsync_);
}

uint32_t StateStore::journal_slot() {
  if (!free_slots_.empty()) {
    const uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  return next_slot_++;
}

void StateStore::journal_free(uint32_t slot) {
  if (journal_fd_ >= 0) {
    uint64_t zero[6] = {};
    ::pwrite(journal_fd_, zero, sizeof(zero), static_cast<off_t>(slot) * kSlotSize);
  }
  free_slots_.push_back(slot);
}

void StateStore::journal_write(uint32_t slot, const FileId& id, uint64_t read_offset) {
  if (journal_fd_ < 0) return;
  const uint64_t v[6] = {id.dev,      id.ino,    id.fingerprint, id.fingerprint_size,
                         read_offset, 0x4a524e4c};
  ::pwrite(journal_fd_, v, sizeof(v), static_cast<off_t>(slot) * kSlotSize);
}

void StateStore::journal_clear() {
  if (journal_fd_ >= 0 && ::ftruncate(journal_fd_, 0) != 0) {
    spdlog::warn("logs: cannot empty the read journal: {}", std::strerror(errno));
  }
}

}  // namespace sidecar::logship
