#include "proxy/http2_common.h"

#include <cstdint>
#include <cstring>

#include <nghttp2/nghttp2.h>

#include "core/small_alloc.h"
#include "http/http1_parser.h"

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

namespace {
// nghttp2 allocates a few small objects per stream (the stream, each frame
// it queues, a copy of each header list): core::small_alloc's free lists.
void* h2_malloc(size_t size, void*) { return core::small_alloc(size); }
void h2_free(void* p, void*) { core::small_free(p); }
void* h2_calloc(size_t n, size_t size, void*) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = core::small_alloc(n * size);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}
void* h2_realloc(void* p, size_t size, void*) { return core::small_realloc(p, size); }
}  // namespace

nghttp2_mem* allocator() {
  static nghttp2_mem mem{nullptr, h2_malloc, h2_free, h2_calloc, h2_realloc};
  return &mem;
}

}  // namespace sidecar::proxy::h2
