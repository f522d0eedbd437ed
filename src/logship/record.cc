#include "logship/record.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <simdjson.h>

namespace sidecar::logship {

void Batch::release() {
  if (released || --pending > 0) return;
  released = true;
  if (sink) sink->acked(seq);
  sink.reset();
  for (auto& p : parents) p->release();
  parents.clear();
}

void Batch::add(std::string_view key, std::string_view value, ValueKind kind, bool key_escaped) {
  const uint32_t k = append(key);
  const uint32_t v = append(value);
  add_at(k, static_cast<uint32_t>(key.size()), v, static_cast<uint32_t>(value.size()), kind,
         key_escaped);
}

void Batch::drop_last() {
  const Record& r = records.back();
  fields.resize(r.first_field);
  records.pop_back();
}

const Field* Batch::find(const Record& r, std::string_view name) const {
  for (uint32_t i = 0; i < r.field_count; ++i) {
    const Field& f = fields[r.first_field + i];
    if (key(f) == name) return &f;
  }
  return nullptr;
}

Field* Batch::find(const Record& r, std::string_view name) {
  return const_cast<Field*>(static_cast<const Batch*>(this)->find(r, name));
}

std::string_view Batch::text(const Field& f, std::string& scratch) const {
  const std::string_view v = value(f);
  if (f.kind != ValueKind::kEscaped || v.find('\\') == std::string_view::npos) return v;
  scratch.clear();
  if (!unescape_json(v, scratch)) return v;
  return scratch;
}

namespace {

// 0: copy; otherwise the escape to write ('u' for \u00XX).
constexpr std::array<char, 256> make_escapes() {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  t['"'] = '"';
  t['\\'] = '\\';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  t['\b'] = 'b';
  t['\f'] = 'f';
  return t;
}
constexpr auto kEscapes = make_escapes();

}  // namespace

void append_escaped(std::string& out, std::string_view s) {
  const char* p = s.data();
  const char* end = p + s.size();
  const char* run = p;
  for (; p < end; ++p) {
    const char e = kEscapes[static_cast<uint8_t>(*p)];
    if (e == 0) continue;
    out.append(run, p);
    if (e == 'u') {
      static const char* hex = "0123456789abcdef";
      const char u[6] = {'\\', 'u', '0', '0', hex[(*p >> 4) & 0xf], hex[*p & 0xf]};
      out.append(u, 6);
    } else {
      const char two[2] = {'\\', e};
      out.append(two, 2);
    }
    run = p + 1;
  }
  out.append(run, end);
}

void append_json_value(std::string& out, const Batch& b, const Field& f) {
  const std::string_view v = b.value(f);
  switch (f.kind) {
    case ValueKind::kString:
      out += '"';
      append_escaped(out, v);
      out += '"';
      return;
    case ValueKind::kEscaped:
      out += '"';
      out.append(v);
      out += '"';
      return;
    case ValueKind::kTrue:
      out.append("true", 4);
      return;
    case ValueKind::kFalse:
      out.append("false", 5);
      return;
    case ValueKind::kNull:
      out.append("null", 4);
      return;
    case ValueKind::kNumber:
    case ValueKind::kJson:
      out.append(v);
      return;
  }
}

void append_json(std::string& out, const Batch& b, const Record& r,
                 const std::vector<std::pair<std::string_view, std::string_view>>& extra) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : extra) {
    if (!first) out += ',';
    first = false;
    out += '"';
    append_escaped(out, k);
    out.append("\":\"", 3);
    append_escaped(out, v);
    out += '"';
  }
  const Field* f = b.fields.data() + r.first_field;
  const Field* end = f + r.field_count;
  const char* arena = b.arena.data();
  for (; f < end; ++f) {
    // The common case (a JSON input: key and value copied as they are)
    // writes through one pointer.
    if (f->key_escaped && (f->kind == ValueKind::kEscaped || f->kind == ValueKind::kNumber ||
                           f->kind == ValueKind::kJson)) {
      const size_t at = out.size();
      const size_t quotes = f->kind == ValueKind::kEscaped ? 2 : 0;
      out.resize(at + 3 + (first ? 0 : 1) + f->key_len + f->value_len + quotes);
      char* p = out.data() + at;
      if (!first) *p++ = ',';
      *p++ = '"';
      std::memcpy(p, arena + f->key, f->key_len);
      p += f->key_len;
      *p++ = '"';
      *p++ = ':';
      if (quotes) *p++ = '"';
      std::memcpy(p, arena + f->value, f->value_len);
      p += f->value_len;
      if (quotes) *p++ = '"';
      first = false;
      continue;
    }
    if (!first) out += ',';
    first = false;
    out += '"';
    if (f->key_escaped) {
      out.append(arena + f->key, f->key_len);
    } else {
      append_escaped(out, b.key(*f));
    }
    out.append("\":", 2);
    append_json_value(out, b, *f);
  }
  out += '}';
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool read_hex4(std::string_view in, size_t i, uint32_t& out) {
  if (i + 4 > in.size()) return false;
  out = 0;
  for (size_t k = 0; k < 4; ++k) {
    const int h = hex_value(in[i + k]);
    if (h < 0) return false;
    out = out << 4 | static_cast<uint32_t>(h);
  }
  return true;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

}  // namespace

bool unescape_json(std::string_view in, std::string& out) {
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= in.size()) return false;
    switch (in[i]) {
      case '"':
      case '\\':
      case '/':
        out += in[i];
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!read_hex4(in, i + 1, cp)) return false;
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
          uint32_t low = 0;
          if (i + 2 < in.size() && in[i + 1] == '\\' && in[i + 2] == 'u' &&
              read_hex4(in, i + 3, low) && low >= 0xdc00 && low < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            i += 6;
          } else {
            cp = 0xfffd;
          }
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          cp = 0xfffd;
        }
        append_utf8(out, cp);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

void append_rfc3339(std::string& out, int64_t time_ns) {
  time_t secs = static_cast<time_t>(time_ns / 1000000000);
  int64_t ns = time_ns % 1000000000;
  if (ns < 0) {
    ns += 1000000000;
    --secs;
  }
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[48];
  const int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<long long>(ns));
  out.append(buf, static_cast<size_t>(n));
}

bool valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

size_t append_utf8_replacing(std::string& out, std::string_view s) {
  size_t replaced = 0;
  size_t i = 0;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  while (i < n) {
    const uint8_t c = p[i];
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      min = 0x10000;
    }
    bool ok = len > 0 && i + len <= n;
    uint32_t cp = len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) {
        ok = false;
      } else {
        cp = cp << 6 | (p[i + k] & 0x3f);
      }
    }
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp < 0xe000);
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out.append("\xef\xbf\xbd", 3);
      ++replaced;
      ++i;  // each byte that starts no valid sequence is replaced on its own
    }
  }
  return replaced;
}

}  // namespace sidecar::logship
