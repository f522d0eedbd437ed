// The json and docker parsers, on simdjson's On-Demand API: members are
// visited once and kept as raw JSON tokens (offsets into the record's copy
// of the line), so JSON in -> JSON out re-encodes by copying. Tokens that
// On-Demand does not check by itself (string escapes and control
// characters, number syntax, nested values) are checked here, so that what
// we send is valid JSON.
#include <charconv>
#include <cstdint>

#include <simdjson.h>

#include "core/json.h"
#include "logship/parsers.h"

namespace sidecar::logship {

namespace od = simdjson::ondemand;

static_assert(kPadding >= simdjson::SIMDJSON_PADDING);

namespace {

// RFC 8259 section 6, within simdjson's ranges.
bool json_number(std::string_view s) {
  if (!core::is_json_number(s)) return false;
  // Valid JSON that simdjson (which checks nested values and what we send)
  // refuses: integers beyond 64 bits (BIGINT_ERROR) and numbers beyond a
  // double's range. Such a line is not taken as JSON, the same whether the
  // number is nested or not.
  const char* end = s.data() + s.size();
  if (s.find_first_of(".eE") == std::string_view::npos) {
    int64_t i64 = 0;
    uint64_t u64 = 0;
    return std::from_chars(s.data(), end, i64).ec == std::errc() ||
           std::from_chars(s.data(), end, u64).ec == std::errc();
  }
  double d = 0;
  return std::from_chars(s.data(), end, d).ec == std::errc();
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// A string's contents (between the quotes) that can be copied as they are:
// no escapes to check and no raw control characters.
bool plain_string(std::string_view s) {
  for (const char c : s) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

}  // namespace

struct JsonParser::Impl {
  od::parser parser;
  simdjson::dom::parser dom;  // validates nested objects and arrays
};

JsonParser::JsonParser() : impl_(std::make_unique<Impl>()) {}
JsonParser::~JsonParser() = default;

bool JsonParser::validate(std::string_view text) {
  simdjson::dom::element e;
  return !impl_->dom.parse(text.data(), text.size(), true).get(e);
}

bool JsonParser::parse(std::string_view line, Batch& b) {
  const size_t fields_before = b.fields.size();
  const uint32_t count_before = b.last().field_count;
  const size_t arena_before = b.arena.size();
  auto fail = [&] {
    b.fields.resize(fields_before);
    b.last().field_count = count_before;
    b.arena.resize(arena_before);
    return false;
  };
  // The fields point into this record's copy of the line.
  const uint32_t base = b.append(line);
  const char* start = line.data();
  auto offset = [&](const char* p) { return base + static_cast<uint32_t>(p - start); };

  od::document doc;
  if (impl_->parser.iterate(line.data(), line.size(), line.size() + kPadding).get(doc)) {
    return fail();
  }
  od::object obj;
  if (doc.get_object().get(obj)) return fail();
  for (auto member : obj) {
    od::field field;
    if (std::move(member).get(field)) return fail();
    // The raw key starts after its opening quote; it ends at the first
    // unescaped quote.
    const char* k = reinterpret_cast<const char*>(field.key().raw());
    const char* end = line.data() + line.size();
    const char* q = k;
    bool escaped_key = false;
    while (q < end && *q != '"') {
      if (*q == '\\') {
        escaped_key = true;
        ++q;
      } else if (static_cast<unsigned char>(*q) < 0x20) {
        return fail();
      }
      ++q;
    }
    if (q >= end) return fail();
    const auto key_off = offset(k);
    const auto key_len = static_cast<uint32_t>(q - k);
    if (escaped_key) {
      std::string_view unescaped;
      if (field.unescaped_key().get(unescaped)) return fail();
    }
    od::value v = field.value();
    od::json_type type;
    if (v.type().get(type)) return fail();
    switch (type) {
      case od::json_type::string: {
        std::string_view tok = trim_right(v.raw_json_token());
        if (tok.size() < 2 || tok.back() != '"') return fail();
        const std::string_view inner = tok.substr(1, tok.size() - 2);
        if (plain_string(inner)) {
          b.add_at(key_off, key_len, offset(inner.data()), static_cast<uint32_t>(inner.size()),
                   ValueKind::kEscaped, true);
        } else {
          // Escapes or control characters: unescape (which checks them) and
          // keep the text; it is escaped again on output.
          std::string_view text;
          if (v.get_string().get(text)) return fail();
          const uint32_t at = b.append(text);
          b.add_at(key_off, key_len, at, static_cast<uint32_t>(text.size()), ValueKind::kString,
                   true);
        }
        break;
      }
      case od::json_type::number: {
        const std::string_view tok = trim_right(v.raw_json_token());
        if (!json_number(tok)) return fail();
        b.add_at(key_off, key_len, offset(tok.data()), static_cast<uint32_t>(tok.size()),
                 ValueKind::kNumber, true);
        break;
      }
      case od::json_type::boolean: {
        bool value = false;
        if (v.get_bool().get(value)) return fail();
        b.add_at(key_off, key_len, 0, 0, value ? ValueKind::kTrue : ValueKind::kFalse, true);
        break;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (v.is_null().get(is_null) || !is_null) return fail();
        b.add_at(key_off, key_len, 0, 0, ValueKind::kNull, true);
        break;
      }
      case od::json_type::object:
      case od::json_type::array: {
        std::string_view raw;
        if (type == od::json_type::object) {
          od::object o;
          if (v.get_object().get(o) || o.raw_json().get(raw)) return fail();
        } else {
          od::array a;
          if (v.get_array().get(a) || a.raw_json().get(raw)) return fail();
        }
        raw = trim_right(raw);
        // On-Demand skipped over it: check it whole (the DOM parser validates).
        simdjson::dom::element e;
        if (impl_->dom.parse(raw.data(), raw.size(), true).get(e)) return fail();
        b.add_at(key_off, key_len, offset(raw.data()), static_cast<uint32_t>(raw.size()),
                 ValueKind::kJson, true);
        break;
      }
    }
  }
  // Nothing but whitespace may follow the object.
  const char* after = nullptr;
  if (!doc.current_location().get(after)) {
    const char* end = line.data() + line.size();
    for (; after < end; ++after) {
      if (*after != ' ' && *after != '\t' && *after != '\r') return fail();
    }
  }
  return true;
}

}  // namespace sidecar::logship
