#include "registry/etcd_json.h"

#include <charconv>
#include <limits>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/json.h"

namespace sidecar::registry::etcd {
namespace {

namespace json = boost::json;

void append_b64(std::string& out, std::string_view bytes) {
  out += '"';
  out += base64_encode(bytes);
  out += '"';
}

bool parse(std::string_view text, json::value& out) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 16;
  out = json::parse(text, ec, {}, opt);
  return !ec;
}

// An int64 field: a string of digits (the gateway's way) or a JSON integer.
// Absent: 0 (proto3 leaves zero values out).
bool get_int(const json::object& o, std::string_view name, int64_t& out) {
  const json::value* v = o.if_contains(name);
  out = 0;
  if (v == nullptr) return true;
  if (const int64_t* i = v->if_int64()) {
    out = *i;
    return true;
  }
  if (const uint64_t* u = v->if_uint64()) {
    if (*u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    out = int64_t(*u);
    return true;
  }
  if (const json::string* s = v->if_string()) {
    const char* b = s->data();
    const char* e = b + s->size();
    auto [p, ec] = std::from_chars(b, e, out);
    return ec == std::errc() && p == e && b != e;
  }
  return false;
}

bool get_bool(const json::object& o, std::string_view name, bool& out) {
  const json::value* v = o.if_contains(name);
  out = false;
  if (v == nullptr) return true;
  if (const bool* b = v->if_bool()) {
    out = *b;
    return true;
  }
  return false;
}

bool get_string(const json::object& o, std::string_view name, std::string& out) {
  const json::value* v = o.if_contains(name);
  out.clear();
  if (v == nullptr) return true;
  if (const json::string* s = v->if_string()) {
    out.assign(s->data(), s->size());
    return true;
  }
  return false;
}

bool get_bytes(const json::object& o, std::string_view name, std::string& out) {
  std::string text;
  if (!get_string(o, name, text)) return false;
  out.clear();
  return base64_decode(text, out);
}

const json::object* get_object(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v != nullptr ? v->if_object() : nullptr;
}

bool error_of(const json::object& o, Error& error) {
  const json::value* e = o.if_contains("error");
  if (e == nullptr) return false;
  error = {};
  if (const json::string* s = e->if_string()) {  // unary: {"error", "code", "message"}
    int64_t code = 0;
    get_int(o, "code", code);
    error.code = int(code);
    std::string message;
    get_string(o, "message", message);
    error.message = message.empty() ? std::string(s->data(), s->size()) : message;
    return true;
  }
  if (const json::object* inner = e->if_object()) {  // stream: {"error": {"grpc_code", ...}}
    int64_t code = 0;
    get_int(*inner, "grpc_code", code);
    error.code = int(code);
    get_string(*inner, "message", error.message);
    return true;
  }
  error.message = "malformed error";
  return true;
}

// The document as an object that is not an error; false otherwise.
const json::object* answer(const json::value& doc, Error& error) {
  const json::object* o = doc.if_object();
  if (o == nullptr) return nullptr;
  if (error_of(*o, error)) return nullptr;
  return o;
}

bool get_kv(const json::object& o, KeyValue& kv) {
  return get_bytes(o, "key", kv.key) && get_bytes(o, "value", kv.value) &&
         get_int(o, "mod_revision", kv.mod_revision) && get_int(o, "lease", kv.lease);
}

bool header_revision(const json::object& o, int64_t& revision) {
  revision = 0;
  const json::object* h = get_object(o, "header");
  return h == nullptr || get_int(*h, "revision", revision);
}

}  // namespace

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (uint8_t(end.back()) < 0xff) {
      end.back() = char(uint8_t(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string put_body(std::string_view key, std::string_view value, int64_t lease) {
  std::string b = "{\"key\":";
  append_b64(b, key);
  b += ",\"value\":";
  append_b64(b, value);
  if (lease != 0) b += fmt::format(",\"lease\":\"{}\"", lease);
  b += '}';
  return b;
}

std::string range_body(std::string_view key, std::string_view range_end) {
  std::string b = "{\"key\":";
  append_b64(b, key);
  if (!range_end.empty()) {
    b += ",\"range_end\":";
    append_b64(b, range_end);
  }
  b += '}';
  return b;
}

std::string lease_grant_body(int64_t ttl_seconds) {
  return fmt::format("{{\"TTL\":\"{}\"}}", ttl_seconds);
}

std::string lease_id_body(int64_t id) { return fmt::format("{{\"ID\":\"{}\"}}", id); }

std::string watch_create_body(std::string_view key, std::string_view range_end,
                              int64_t start_revision) {
  std::string b = "{\"create_request\":{\"key\":";
  append_b64(b, key);
  if (!range_end.empty()) {
    b += ",\"range_end\":";
    append_b64(b, range_end);
  }
  if (start_revision > 0) b += fmt::format(",\"start_revision\":\"{}\"", start_revision);
  b += "}}";
  return b;
}

std::string authenticate_body(std::string_view name, std::string_view password) {
  std::string b = "{\"name\":";
  core::append_json_string(b, name);
  b += ",\"password\":";
  core::append_json_string(b, password);
  b += '}';
  return b;
}

bool parse_error(std::string_view body, Error& error) {
  json::value doc;
  if (!parse(body, doc)) return false;
  const json::object* o = doc.if_object();
  return o != nullptr && error_of(*o, error);
}

bool parse_range(std::string_view body, RangeResult& out, Error& error) {
  json::value doc;
  if (!parse(body, doc)) return false;
  const json::object* o = answer(doc, error);
  if (o == nullptr) return false;
  out = {};
  if (!header_revision(*o, out.revision)) return false;
  if (const json::value* kvs = o->if_contains("kvs")) {
    const json::array* a = kvs->if_array();
    if (a == nullptr) return false;
    for (const json::value& v : *a) {
      const json::object* kv = v.if_object();
      if (kv == nullptr) return false;
      KeyValue item;
      if (!get_kv(*kv, item)) return false;
      out.kvs.push_back(std::move(item));
    }
  }
  return true;
}

bool parse_lease(std::string_view body, LeaseResult& out, Error& error) {
  json::value doc;
  if (!parse(body, doc)) return false;
  const json::object* o = answer(doc, error);
  if (o == nullptr) return false;
  if (const json::value* r = o->if_contains("result")) {  // keepalive (a stream)
    o = r->if_object();
    if (o == nullptr) return false;
  }
  out = {};
  return get_int(*o, "ID", out.id) && get_int(*o, "TTL", out.ttl);
}

bool parse_token(std::string_view body, std::string& token, Error& error) {
  json::value doc;
  if (!parse(body, doc)) return false;
  const json::object* o = answer(doc, error);
  return o != nullptr && get_string(*o, "token", token) && !token.empty();
}

bool parse_watch(std::string_view line, WatchResponse& out, Error& error) {
  json::value doc;
  if (!parse(line, doc)) return false;
  const json::object* o = answer(doc, error);
  if (o == nullptr) return false;
  const json::object* r = get_object(*o, "result");
  if (r == nullptr) return false;
  out = {};
  if (!header_revision(*r, out.revision) || !get_bool(*r, "created", out.created) ||
      !get_bool(*r, "canceled", out.canceled) ||
      !get_int(*r, "compact_revision", out.compact_revision) ||
      !get_string(*r, "cancel_reason", out.cancel_reason)) {
    return false;
  }
  if (const json::value* events = r->if_contains("events")) {
    const json::array* a = events->if_array();
    if (a == nullptr) return false;
    for (const json::value& v : *a) {
      const json::object* e = v.if_object();
      if (e == nullptr) return false;
      WatchEvent event;
      std::string type;
      if (!get_string(*e, "type", type)) return false;
      if (type == "DELETE") {
        event.is_delete = true;
      } else if (!type.empty() && type != "PUT") {
        return false;
      }
      const json::object* kv = get_object(*e, "kv");
      if (kv == nullptr || !get_kv(*kv, event.kv)) return false;
      out.events.push_back(std::move(event));
    }
  }
  return true;
}

std::string encode_instance(const Instance& instance) {
  std::string b = "{\"address\":";
  core::append_json_string(b, instance.address);
  b += fmt::format(",\"port\":{},\"tags\":[", instance.port);
  for (size_t i = 0; i < instance.tags.size(); ++i) {
    if (i > 0) b += ',';
    core::append_json_string(b, instance.tags[i]);
  }
  b += "],\"metadata\":{";
  bool first = true;
  for (const auto& [k, v] : instance.metadata) {
    if (!first) b += ',';
    first = false;
    core::append_json_string(b, k);
    b += ':';
    core::append_json_string(b, v);
  }
  b += fmt::format("}},\"weight\":{},\"health\":", instance.weight);
  core::append_json_string(b, instance.health);
  b += ",\"started_at\":";
  core::append_json_string(b, instance.started_at);
  b += '}';
  return b;
}

bool decode_instance(std::string_view text, Instance& out) {
  json::value doc;
  if (!parse(text, doc)) return false;
  const json::object* o = doc.if_object();
  if (o == nullptr) return false;
  out = {};
  const json::value* address = o->if_contains("address");
  if (address == nullptr || !address->is_string() || address->get_string().empty()) return false;
  out.address = std::string(address->get_string());
  int64_t port = 0;
  if (!get_int(*o, "port", port) || port < 1 || port > 65535) return false;
  out.port = uint16_t(port);
  if (const json::value* tags = o->if_contains("tags")) {
    const json::array* a = tags->if_array();
    if (a == nullptr) return false;
    for (const json::value& t : *a) {
      if (!t.is_string()) return false;
      out.tags.emplace_back(t.get_string());
    }
  }
  if (const json::object* m = get_object(*o, "metadata")) {
    for (const auto& [k, v] : *m) {
      if (!v.is_string()) return false;
      out.metadata[std::string(k)] = std::string(v.get_string());
    }
  }
  int64_t weight = 1;
  if (o->contains("weight")) {
    if (!get_int(*o, "weight", weight) || weight < 1 || weight > 1000000) return false;
  }
  out.weight = uint32_t(weight);
  std::string health;
  if (!get_string(*o, "health", health)) return false;
  if (!health.empty()) out.health = health;
  return get_string(*o, "started_at", out.started_at);
}

}  // namespace sidecar::registry::etcd
