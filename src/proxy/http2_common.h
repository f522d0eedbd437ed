// Pieces both sides of the HTTP/2 codec use (http2_server, http2_upstream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/codec.h"

#include <nghttp2/nghttp2.h>

namespace sidecar::proxy::h2 {

using Fields = std::vector<std::pair<std::string, std::string>>;

// Connection-specific fields, never sent in HTTP/2 frames [RFC 9113 8.2.2]
// (`te` is dropped too: only "trailers" may pass, and the codecs add none).
bool hop_by_hop(std::string_view lower_name);
std::string lower(std::string_view s);
// "name: value\r\n" lines (the lines a proxy adds) as fields, names in
// lower case, hop-by-hop ones left out.
void add_lines(std::string_view lines, Fields& out);
// Header entries pointing into `fields` (valid while it is unchanged),
// after a leading pseudo-header when `pseudo_name` is not empty.
std::vector<nghttp2_nv> to_nv(std::string_view pseudo_name, std::string_view pseudo_value,
                              const Fields& fields);

// The header list of one HEADERS frame built without a string per field:
// names are lower-cased into one buffer the list owns (reused from list to
// list), values point at the caller's memory. nghttp2 copies the list when
// it is submitted, so that memory need only outlive the submit call.
// Hop-by-hop fields are left out [RFC 9113 8.2.2].
class NvList {
 public:
  // Starts a new list; `name_bytes` and `count` are capacity hints.
  void reset(size_t name_bytes, size_t count);
  // A pseudo-header or an already lower-case name.
  void add_lower(std::string_view name, std::string_view value);
  // Any field: its name is lower-cased; false when it was left out.
  bool add(std::string_view name, std::string_view value);
  // "name: value\r\n" lines (what a proxy adds); their bytes count in
  // `name_bytes`.
  void add_lines(std::string_view lines);
  // The entries, valid until the next change to the list.
  const nghttp2_nv* data();
  size_t size() const { return nva_.size(); }

 private:
  static constexpr size_t kExternal = ~size_t{0};
  std::string names_;
  std::vector<nghttp2_nv> nva_;
  std::vector<size_t> name_at_;  // offset in names_, or kExternal
};

// A body being sent as DATA frames: spans handed over by a stream, copied
// into frames as flow control allows.
struct SpanSource {
  Spans spans;
  size_t index = 0, offset = 0;
  bool end = false;                // the spans end the body
  bool write_outstanding = false;  // the stream waits to hear they were taken
  bool deferred = false;           // the data source said "nothing yet"

  void set(const Spans& body, bool is_end) {
    spans = body;  // into the capacity kept by reset: no allocation per response
    index = offset = 0;
    end = is_end;
  }
  // No body, not ended, nothing written; keeps a small spans' capacity.
  void reset() {
    if (spans.capacity() > 16) Spans().swap(spans);
    spans.clear();
    index = offset = 0;
    end = write_outstanding = deferred = false;
  }
  // Copies up to `length` bytes into `buf`; returns how many.
  size_t copy(uint8_t* buf, size_t length);
  bool drained() const { return index == spans.size(); }
  // nghttp2's data source read callback for stream `id`: copies what fits
  // into `buf`; once the spans are all taken sets `written` (the stream
  // waited for that), and with `end` ends the body, sending `trailers` as
  // the final HEADERS when there are any. Returns the length, or
  // NGHTTP2_ERR_DEFERRED when nothing is there yet.
  long read_frame(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                  uint32_t* flags, const Fields& trailers, bool& written);
};

// The memory functions for nghttp2 sessions (nghttp2_session_*_new3):
// core::small_alloc (per-thread free lists by size class; plain malloc
// under ASan). Any thread.
nghttp2_mem* allocator();

// Installs into `c` the nghttp2 callbacks both connection kinds take the
// same way (a field, a frame received, DATA, a stream closed), each calling
// `Connection`'s on_header, on_frame_recv, on_data, on_stream_close with
// the session's user data as the connection. Each kind adds its own.
template <typename Connection>
void set_common_callbacks(nghttp2_session_callbacks* c) {
  nghttp2_session_callbacks_set_on_header_callback(
      c, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
            const uint8_t* value, size_t valuelen, uint8_t, void* u) {
        return static_cast<Connection*>(u)->on_header(
            f->hd.stream_id, std::string_view(reinterpret_cast<const char*>(name), namelen),
            std::string_view(reinterpret_cast<const char*>(value), valuelen));
      });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      c, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
        return static_cast<Connection*>(u)->on_frame_recv(f->hd.type, f->hd.flags, f->hd.stream_id);
      });
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      c, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* u) {
        return static_cast<Connection*>(u)->on_data(id, data, len);
      });
  nghttp2_session_callbacks_set_on_stream_close_callback(
      c, [](nghttp2_session*, int32_t id, uint32_t code, void* u) {
        return static_cast<Connection*>(u)->on_stream_close(id, code);
      });
}

}  // namespace sidecar::proxy::h2
