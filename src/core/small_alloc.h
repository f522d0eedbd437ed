// Small blocks from per-thread free lists, for objects allocated and freed
// at a high rate: nghttp2's per-stream objects (proxy/http2_common.cc) and
// the reads' operations (net/ready_read_op.h). glibc's per-thread cache
// serves such blocks quickly until a burst of streams or reads empties it,
// then falls back to its bins (about 3% of a worker's CPU at HTTP/2
// saturation, measured with a uprobe on malloc).
//
// Blocks up to kMaxSmall bytes come from one free list per 64-byte size
// class kept by the calling thread (kKeep blocks per class at most, 288 KiB
// in all); larger ones from malloc. Every block starts with a 16-byte
// header holding its capacity, so free and realloc need no size, and
// malloc's 16-byte alignment is kept. Under ASan nothing is kept: each
// block goes back to malloc.
//
// Thread safety: any thread; a block may be freed on another thread than
// the one that took it (it joins that thread's list). Errors: null when
// malloc fails.
#pragma once

#include <cstddef>

namespace sidecar::core {

inline constexpr size_t kMaxSmall = 512 - 16;  // bytes served from the free lists

void* small_alloc(size_t size);
void small_free(void* p);  // null is fine
// realloc's contract: null `p` allocates, size 0 frees and returns null, the
// first min(old, new) bytes are kept.
void* small_realloc(void* p, size_t size);

}  // namespace sidecar::core
