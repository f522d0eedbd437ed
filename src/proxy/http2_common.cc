#include "proxy/http2_common.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <nghttp2/nghttp2.h>

#include "http/http1_parser.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIDECAR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIDECAR_ASAN 1
#endif
#endif

namespace sidecar::proxy::h2 {

bool hop_by_hop(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "te";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
  return out;
}

void add_lines(std::string_view lines, Fields& out) {
  http::for_each_field_line(lines, [&](std::string_view n, std::string_view value) {
    std::string name = lower(n);
    if (!hop_by_hop(name)) out.emplace_back(std::move(name), std::string(value));
  });
}

namespace {
nghttp2_nv nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}
}  // namespace

std::vector<nghttp2_nv> to_nv(std::string_view pseudo_name, std::string_view pseudo_value,
                              const Fields& fields) {
  std::vector<nghttp2_nv> out;
  out.reserve(fields.size() + 1);
  if (!pseudo_name.empty()) out.push_back(nv(pseudo_name, pseudo_value));
  for (const auto& [name, value] : fields) out.push_back(nv(name, value));
  return out;
}

void NvList::reset(size_t name_bytes, size_t count) {
  names_.clear();
  names_.reserve(name_bytes);
  nva_.clear();
  nva_.reserve(count);
  name_at_.clear();
  name_at_.reserve(count);
}

void NvList::add_lower(std::string_view name, std::string_view value) {
  nva_.push_back(nv(name, value));
  name_at_.push_back(kExternal);
}

bool NvList::add(std::string_view name, std::string_view value) {
  const size_t at = names_.size();
  for (char c : name) names_.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c);
  if (hop_by_hop(std::string_view(names_).substr(at))) {
    names_.resize(at);
    return false;
  }
  // The name's pointer is set by data(): names_ may still grow.
  nva_.push_back(nv(std::string_view(), value));
  nva_.back().namelen = name.size();
  name_at_.push_back(at);
  return true;
}

const nghttp2_nv* NvList::data() {
  for (size_t i = 0; i < nva_.size(); ++i) {
    if (name_at_[i] != kExternal)
      nva_[i].name = reinterpret_cast<uint8_t*>(names_.data() + name_at_[i]);
  }
  return nva_.data();
}

void NvList::add_lines(std::string_view lines) {
  http::for_each_field_line(
      lines, [&](std::string_view name, std::string_view value) { add(name, value); });
}

size_t SpanSource::copy(uint8_t* buf, size_t length) {
  size_t n = 0;
  while (n < length && index < spans.size()) {
    const auto& b = spans[index];
    const size_t take = std::min(length - n, b.size() - offset);
    std::memcpy(buf + n, static_cast<const char*>(b.data()) + offset, take);
    n += take;
    offset += take;
    if (offset == b.size()) {
      ++index;
      offset = 0;
    }
  }
  return n;
}

long SpanSource::read_frame(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                            uint32_t* flags, const Fields& trailers, bool& written) {
  const size_t n = copy(buf, length);
  if (!drained()) return static_cast<long>(n);
  if (write_outstanding) {
    write_outstanding = false;
    written = true;
  }
  if (end) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!trailers.empty()) {
      // The trailers end the stream [RFC 9113 8.1].
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      const std::vector<nghttp2_nv> nva = to_nv({}, {}, trailers);
      nghttp2_submit_trailer(session, id, nva.data(), nva.size());
    }
    return static_cast<long>(n);
  }
  if (n == 0) {
    deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<long>(n);
}

// ---- allocator ----

#ifndef SIDECAR_ASAN
namespace {

// nghttp2 allocates a few small objects per stream (the stream, each frame
// it queues, a copy of each header list). glibc serves them from its
// per-thread cache until a burst of streams empties it, then from its bins:
// about 3% of a worker's CPU at saturation. Blocks up to kClasses * kClass
// bytes come from free lists kept per thread instead, one per size class.
// Each block starts with a header holding its capacity (nghttp2's free and
// realloc pass no size); 16 bytes keep malloc's alignment.
constexpr size_t kHeader = 16;
constexpr size_t kClass = 64;   // bytes
constexpr size_t kClasses = 8;  // blocks up to 512 bytes
constexpr size_t kKeep = 128;   // free blocks kept per class and thread (288 KiB at most)

struct FreeLists {
  std::vector<void*> lists[kClasses];
  ~FreeLists();
};
// Set once this thread's lists are destroyed (thread exit): blocks freed
// after that go back to malloc. A plain bool stays readable until then.
thread_local bool t_lists_gone = false;
thread_local FreeLists t_lists;

FreeLists::~FreeLists() {
  t_lists_gone = true;
  for (auto& l : lists) {
    for (void* p : l) std::free(p);
  }
}

size_t& capacity_of(void* block) { return *static_cast<size_t*>(block); }

void* h2_malloc(size_t size, void*) {
  const size_t total = size + kHeader;
  void* block = nullptr;
  size_t capacity = total;
  if (total <= kClass * kClasses) {
    const size_t c = (total - 1) / kClass;
    capacity = (c + 1) * kClass;
    if (!t_lists_gone && !t_lists.lists[c].empty()) {
      block = t_lists.lists[c].back();
      t_lists.lists[c].pop_back();
    }
  }
  if (block == nullptr) block = std::malloc(capacity);
  if (block == nullptr) return nullptr;
  capacity_of(block) = capacity;
  return static_cast<char*>(block) + kHeader;
}

void h2_free(void* ptr, void*) {
  if (ptr == nullptr) return;
  void* block = static_cast<char*>(ptr) - kHeader;
  const size_t capacity = capacity_of(block);
  if (capacity <= kClass * kClasses && capacity % kClass == 0 && !t_lists_gone) {
    auto& l = t_lists.lists[capacity / kClass - 1];
    if (l.size() < kKeep) {
      l.push_back(block);
      return;
    }
  }
  std::free(block);
}

void* h2_calloc(size_t n, size_t size, void* u) {
  if (size != 0 && n > (SIZE_MAX - kHeader) / size) return nullptr;
  void* p = h2_malloc(n * size, u);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* h2_realloc(void* ptr, size_t size, void* u) {
  if (ptr == nullptr) return h2_malloc(size, u);
  if (size == 0) {
    h2_free(ptr, u);
    return nullptr;
  }
  const size_t usable = capacity_of(static_cast<char*>(ptr) - kHeader) - kHeader;
  if (size <= usable) return ptr;
  void* p = h2_malloc(size, u);
  if (p == nullptr) return nullptr;
  std::memcpy(p, ptr, usable);
  h2_free(ptr, u);
  return p;
}

}  // namespace

nghttp2_mem* allocator() {
  static nghttp2_mem mem{nullptr, h2_malloc, h2_free, h2_calloc, h2_realloc};
  return &mem;
}
#else
nghttp2_mem* allocator() { return nullptr; }  // malloc's own: ASan sees every block
#endif

}  // namespace sidecar::proxy::h2
