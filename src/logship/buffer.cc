#include "logship/buffer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "logship/state.h"

namespace sidecar::logship {

static_assert(std::endian::native == std::endian::little, "chunk files are little-endian");

namespace {

constexpr char kMagic[4] = {'S', 'C', 'L', 'B'};
constexpr uint16_t kVersion = 1;
constexpr uint32_t kHeaderSize = 40;
constexpr uint32_t kRecordSize = 16;
constexpr uint32_t kFieldSize = 20;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

template <typename T>
T get(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Deletes a chunk file once the output acknowledged what it held.
class ChunkFileSink : public AckSink {
 public:
  ChunkFileSink(std::string path, uint64_t bytes, std::shared_ptr<uint64_t> disk_bytes)
      : path_(std::move(path)), bytes_(bytes), disk_bytes_(std::move(disk_bytes)) {}
  void acked(uint64_t) override {
    ::unlink(path_.c_str());
    *disk_bytes_ -= std::min(*disk_bytes_, bytes_);
  }

 private:
  std::string path_;
  uint64_t bytes_;
  std::shared_ptr<uint64_t> disk_bytes_;
};

}  // namespace

void encode_chunk(const Batch& b, std::string& out) {
  out.clear();
  out.append(kMagic, 4);
  put<uint16_t>(out, kVersion);
  put<uint16_t>(out, kHeaderSize);
  put<uint32_t>(out, static_cast<uint32_t>(b.records.size()));
  put<uint32_t>(out, static_cast<uint32_t>(b.fields.size()));
  put<uint32_t>(out, static_cast<uint32_t>(b.arena.size()));
  put<uint32_t>(out, static_cast<uint32_t>(b.tag.size()));
  put<uint64_t>(out, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count()));
  put<uint32_t>(out, 0);  // crc32, below
  put<uint32_t>(out, 0);
  out.append(b.tag);
  for (const Record& r : b.records) {
    put<int64_t>(out, r.time_ns);
    put<uint32_t>(out, r.first_field);
    put<uint32_t>(out, r.field_count);
  }
  for (const Field& f : b.fields) {
    put<uint32_t>(out, f.key);
    put<uint32_t>(out, f.key_len);
    put<uint32_t>(out, f.value);
    put<uint32_t>(out, f.value_len);
    put<uint8_t>(out, static_cast<uint8_t>(f.kind));
    put<uint8_t>(out, f.key_escaped ? 1 : 0);
    put<uint16_t>(out, 0);
  }
  out.append(b.arena);
  const uLong crc = ::crc32(0, reinterpret_cast<const Bytef*>(out.data() + kHeaderSize),
                            static_cast<uInt>(out.size() - kHeaderSize));
  const auto crc32 = static_cast<uint32_t>(crc);
  std::memcpy(out.data() + 32, &crc32, 4);
}

bool decode_chunk(std::string_view data, Batch& out) {
  if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, 4) != 0) return false;
  const char* p = data.data();
  if (get<uint16_t>(p + 4) != kVersion || get<uint16_t>(p + 6) != kHeaderSize) return false;
  const uint64_t records = get<uint32_t>(p + 8);
  const uint64_t fields = get<uint32_t>(p + 12);
  const uint64_t arena = get<uint32_t>(p + 16);
  const uint64_t tag = get<uint32_t>(p + 20);
  const uint64_t size = kHeaderSize + tag + records * kRecordSize + fields * kFieldSize + arena;
  if (size != data.size()) return false;
  const uLong crc = ::crc32(0, reinterpret_cast<const Bytef*>(p + kHeaderSize),
                            static_cast<uInt>(data.size() - kHeaderSize));
  if (static_cast<uint32_t>(crc) != get<uint32_t>(p + 32)) return false;
  const char* q = p + kHeaderSize;
  out.tag.assign(q, tag);
  q += tag;
  out.records.resize(records);
  for (Record& r : out.records) {
    r.time_ns = get<int64_t>(q);
    r.first_field = get<uint32_t>(q + 8);
    r.field_count = get<uint32_t>(q + 12);
    q += kRecordSize;
    if (static_cast<uint64_t>(r.first_field) + r.field_count > fields) return false;
  }
  out.fields.resize(fields);
  for (Field& f : out.fields) {
    f.key = get<uint32_t>(q);
    f.key_len = get<uint32_t>(q + 4);
    f.value = get<uint32_t>(q + 8);
    f.value_len = get<uint32_t>(q + 12);
    const uint8_t kind = get<uint8_t>(q + 16);
    f.key_escaped = get<uint8_t>(q + 17) != 0;
    q += kFieldSize;
    if (kind > static_cast<uint8_t>(ValueKind::kJson)) return false;
    f.kind = static_cast<ValueKind>(kind);
    if (static_cast<uint64_t>(f.key) + f.key_len > arena ||
        static_cast<uint64_t>(f.value) + f.value_len > arena) {
      return false;
    }
  }
  out.arena.assign(q, arena);
  return true;
}

OutputBuffer::OutputBuffer(const BufferConfig& config, std::string dir, bool fsync)
    : config_(config),
      dir_(std::move(dir)),
      fsync_(fsync),
      disk_bytes_shared_(std::make_shared<uint64_t>(0)) {}

OutputBuffer::~OutputBuffer() = default;

void OutputBuffer::recover() {
  if (!config_.disk) return;
  make_dirs(dir_);
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.ends_with(".chunk")) names.push_back(name);
      if (name.ends_with(".tmp")) ::unlink((dir_ + "/" + name).c_str());
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());  // fixed-width hex sequence numbers
  for (const std::string& name : names) {
    struct stat st {};
    const std::string path = dir_ + "/" + name;
    if (::stat(path.c_str(), &st) != 0) continue;
    disk_.push_back({path, static_cast<uint64_t>(st.st_size)});
    *disk_bytes_shared_ += static_cast<uint64_t>(st.st_size);
    next_chunk_ = std::max<uint64_t>(next_chunk_, std::strtoull(name.c_str(), nullptr, 16) + 1);
  }
  if (!names.empty()) {
    spdlog::info("logs: {} chunk files ({} bytes) from the last run to deliver in {}", names.size(),
                 *disk_bytes_shared_, dir_);
  }
  update_full();
}

bool OutputBuffer::spill(const std::shared_ptr<Batch>& batch) {
  if (*disk_bytes_shared_ + batch->bytes() > config_.max_size) return false;
  encode_chunk(*batch, scratch_);
  const std::string path = fmt::format("{}/{:016x}.chunk", dir_, next_chunk_);
  if (!write_file_atomic(path, scratch_, fsync_)) {
    ++counters_.disk_errors;
    return false;
  }
  ++next_chunk_;
  ++counters_.chunks_written;
  disk_.push_back({path, scratch_.size()});
  *disk_bytes_shared_ += scratch_.size();
  return true;
}

void OutputBuffer::push(std::shared_ptr<Batch> batch) {
  if (config_.disk &&
      (!disk_.empty() || !tail_.empty() || memory_bytes_ + batch->bytes() > config_.memory_size)) {
    if (tail_.empty()) {
      if (*disk_bytes_shared_ + batch->bytes() > config_.max_size && config_.drop_oldest) {
        while (!disk_.empty() && *disk_bytes_shared_ + batch->bytes() > config_.max_size) {
          drop_oldest();
        }
      }
      if (spill(batch)) {
        batch->release();  // durable now: the input may checkpoint past it
        update_full();
        return;
      }
    }
    memory_bytes_ += batch->bytes();
    tail_.push_back(std::move(batch));
    update_full();
    return;
  }
  memory_bytes_ += batch->bytes();
  memory_.push_back(std::move(batch));
  if (!config_.disk && config_.drop_oldest) {
    while (memory_bytes_ > config_.memory_size && memory_.size() > 1 + in_flight_) drop_oldest();
  }
  update_full();
}

void OutputBuffer::push_front(std::shared_ptr<Batch> batch) {
  memory_bytes_ += batch->bytes();
  memory_.push_front(std::move(batch));
}

void OutputBuffer::drop_oldest() {
  // Never what the output is sending right now.
  if (memory_.size() > in_flight_) {
    auto it = memory_.begin() + static_cast<std::ptrdiff_t>(in_flight_);
    counters_.dropped_records += (*it)->records.size();
    memory_bytes_ -= std::min(memory_bytes_, (*it)->bytes());
    (*it)->release();
    memory_.erase(it);
    return;
  }
  if (!disk_.empty()) {
    Batch dropped;
    std::string data;
    if (read_file(disk_.front().path, data) && decode_chunk(data, dropped)) {
      counters_.dropped_records += dropped.records.size();
    }
    ::unlink(disk_.front().path.c_str());
    *disk_bytes_shared_ -= std::min(*disk_bytes_shared_, disk_.front().bytes);
    disk_.pop_front();
  }
}

std::shared_ptr<Batch> OutputBuffer::peek(size_t i) {
  while (i >= memory_.size()) {
    if (!disk_.empty()) {
      DiskChunk chunk = disk_.front();
      disk_.pop_front();
      auto batch = std::make_shared<Batch>();
      std::string data;
      if (!read_file(chunk.path, data) || !decode_chunk(data, *batch)) {
        ++counters_.corrupt_chunks;
        spdlog::warn("logs: chunk {} is not readable or corrupt; moved aside", chunk.path);
        ::rename(chunk.path.c_str(), (chunk.path + ".corrupt").c_str());
        *disk_bytes_shared_ -= std::min(*disk_bytes_shared_, chunk.bytes);
        continue;
      }
      ++counters_.chunks_read;
      batch->pending = 1;
      batch->sink = std::make_shared<ChunkFileSink>(chunk.path, chunk.bytes, disk_bytes_shared_);
      batch->from_disk = true;
      memory_bytes_ += batch->bytes();
      memory_.push_back(std::move(batch));
    } else if (!tail_.empty()) {
      memory_.push_back(std::move(tail_.front()));
      tail_.pop_front();
    } else {
      return nullptr;
    }
  }
  return memory_[i];
}

void OutputBuffer::pop(size_t n) {
  for (size_t k = 0; k < n && !memory_.empty(); ++k) {
    std::shared_ptr<Batch> b = std::move(memory_.front());
    memory_.pop_front();
    memory_bytes_ -= std::min(memory_bytes_, b->bytes());
    b->release();
  }
  in_flight_ = in_flight_ > n ? in_flight_ - n : 0;
  if (!tail_.empty()) retry_spill();
  update_full();
}

void OutputBuffer::retry_spill() {
  while (!tail_.empty() && disk_.size() + memory_.size() > 0) {
    if (!spill(tail_.front())) break;
    memory_bytes_ -= std::min(memory_bytes_, tail_.front()->bytes());
    tail_.front()->release();
    tail_.pop_front();
  }
  update_full();
}

void OutputBuffer::spill_all() {
  if (!config_.disk) return;
  make_dirs(dir_);
  // Everything in memory, in order, after what is already on disk would
  // break the order; a restart delivers chunks by sequence number, so the
  // memory part gets numbers before the disk part when it is older.
  std::deque<std::shared_ptr<Batch>> keep;
  for (auto& b : memory_) {
    if (b->from_disk) continue;  // already a chunk file
    keep.push_back(b);
  }
  for (auto& b : tail_) keep.push_back(b);
  for (auto& b : keep) {
    if (b->released) continue;
    if (spill(b)) {
      b->release();
    }
  }
  memory_.clear();
  tail_.clear();
  memory_bytes_ = 0;
}

void OutputBuffer::update_full() {
  bool full;
  if (config_.disk) {
    full = !tail_.empty();
  } else {
    full = !config_.drop_oldest && memory_bytes_ >= config_.memory_size;
  }
  if (full && !full_) ++counters_.full_events;
  full_ = full;
}

}  // namespace sidecar::logship
