// Records: the compact internal form of a log line after parsing.
//
// A Batch holds many records in one byte arena: each Field is a key and a
// value given as offsets into the arena, so a record costs no allocation of
// its own. JSON values parsed from the input are kept as their raw JSON text
// (strings still escaped), so re-encoding JSON is a copy; text values are
// kept unescaped and escaped when encoded.
//
// A Batch also carries what its delivery acknowledges (the source and the
// offset its records end at, see pipeline.h), so that an input's checkpoint
// advances only when every output that took the batch has acknowledged it.
//
// Thread safety: a Batch is built and read on the shipper thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sidecar::logship {

enum class ValueKind : uint8_t {
  kString,   // text, unescaped (valid UTF-8)
  kEscaped,  // a JSON string's contents, still escaped, without the quotes
  kNumber,   // a JSON number as written
  kTrue,
  kFalse,
  kNull,
  kJson,  // a JSON object or array as written
};

struct Field {
  uint32_t key = 0;  // arena offset
  uint32_t key_len = 0;
  uint32_t value = 0;  // arena offset
  uint32_t value_len = 0;
  ValueKind kind = ValueKind::kString;
  bool key_escaped = false;  // the key is JSON-escaped (taken from a JSON input as is)
};

struct Record {
  int64_t time_ns = 0;  // Unix time in nanoseconds
  uint32_t first_field = 0;
  uint32_t field_count = 0;
};

// What acknowledging a batch means to whoever produced it: called once, when
// the last output that took the batch acknowledged it (or gave up on it).
class AckSink {
 public:
  virtual ~AckSink() = default;
  virtual void acked(uint64_t seq) = 0;
};

class Batch {
 public:
  std::string arena;
  std::vector<Field> fields;
  std::vector<Record> records;
  std::string tag;  // the input's tag

  // Acknowledgement: `sink->acked(seq)` once `pending` outputs released it.
  std::shared_ptr<AckSink> sink;
  uint64_t seq = 0;
  int pending = 0;
  // A batch derived from others (a retry of failed items) releases them when done.
  std::vector<std::shared_ptr<Batch>> parents;
  bool from_disk = false;  // loaded from a chunk file (which its sink deletes)
  bool released = false;   // acknowledged (pending reached 0)

  // Releases one output's hold; the last one acknowledges.
  void release();

  size_t bytes() const { return arena.size() + fields.size() * sizeof(Field) + 64; }
  bool empty() const { return records.empty(); }

  // Building a record: begin, add fields, end (or drop).
  void begin(int64_t time_ns) {
    records.push_back(Record{time_ns, static_cast<uint32_t>(fields.size()), 0});
  }
  // Copies into the arena, returns the offset.
  uint32_t append(std::string_view bytes) {
    const auto at = static_cast<uint32_t>(arena.size());
    arena.append(bytes);
    return at;
  }
  void add(std::string_view key, std::string_view value, ValueKind kind, bool key_escaped = false);
  void add_at(uint32_t key, uint32_t key_len, uint32_t value, uint32_t value_len, ValueKind kind,
              bool key_escaped) {
    fields.push_back(Field{key, key_len, value, value_len, kind, key_escaped});
    ++records.back().field_count;
  }
  void end() {}
  void drop_last();
  Record& last() { return records.back(); }

  std::string_view key(const Field& f) const { return {arena.data() + f.key, f.key_len}; }
  std::string_view value(const Field& f) const { return {arena.data() + f.value, f.value_len}; }
  // The field called `name` in record `r`, or nullptr (keys compared unescaped
  // for plain names, which is all a config can name).
  const Field* find(const Record& r, std::string_view name) const;
  Field* find(const Record& r, std::string_view name);
  // A field's value as text: unescaped when it was a JSON string, its JSON
  // text otherwise. Uses `scratch` when it must unescape.
  std::string_view text(const Field& f, std::string& scratch) const;
};

// JSON output (RFC 8259).
// Appends `s` escaped, without quotes; invalid UTF-8 must have been replaced before.
void append_escaped(std::string& out, std::string_view s);
// Appends record `r` of `b` as a JSON object; `extra` fields (key, value
// strings) come first.
void append_json(std::string& out, const Batch& b, const Record& r,
                 const std::vector<std::pair<std::string_view, std::string_view>>& extra = {});
// Appends a field's value as JSON.
void append_json_value(std::string& out, const Batch& b, const Field& f);
// Unescapes the contents of a JSON string (no quotes). False when invalid.
bool unescape_json(std::string_view in, std::string& out);
// RFC 3339 UTC with nanoseconds: 2026-11-21T12:00:00.123456789Z.
void append_rfc3339(std::string& out, int64_t time_ns);

// UTF-8 (RFC 3629): true when `s` is valid.
bool valid_utf8(std::string_view s);
// Appends `s` with every invalid byte sequence replaced by U+FFFD; returns
// how many were replaced.
size_t append_utf8_replacing(std::string& out, std::string_view s);

}  // namespace sidecar::logship
