#include "proxy/upgrade.h"

#include <cstdint>

#include "core/random.h"

namespace sidecar::proxy {
namespace {

// Whether the comma-separated list `value` has `token` (OWS around items).
bool lists(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (http::iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string_view upgrade_type(const http::RequestHead& request) {
  // HTTP/1.0 has no Upgrade [RFC 9110 7.8: ignored in an HTTP/1.0 request].
  if (!request.has_upgrade || !request.has_connection || request.version_minor == 0) return {};
  bool connection_upgrade = false;
  const http::HeaderField* upgrade = nullptr;
  for (const http::HeaderField& f : request.headers) {
    if (f.name.size() == 10 && http::iequals(f.name, "connection")) {
      connection_upgrade = connection_upgrade || lists(f.value, "upgrade");
    } else if (f.name.size() == 7 && http::iequals(f.name, "upgrade")) {
      if (upgrade != nullptr) return {};  // two Upgrade fields: not one protocol to switch to
      upgrade = &f;
    }
  }
  if (!connection_upgrade || upgrade == nullptr) return {};
  std::string_view v = upgrade->value;
  // One protocol (with an optional version: "websocket", "foo/2"); a list
  // of choices is not something a tunnel can pick from for the upstream.
  if (v.empty() || v.find(',') != std::string_view::npos) return {};
  if (http::iequals(v, "h2c")) return {};
  return v;
}

bool upgrade_allowed(const std::vector<std::string>& allowed, std::string_view type) {
  for (const std::string& a : allowed) {
    if (http::iequals(a, type)) return true;
  }
  return false;
}

std::string websocket_key(core::Random& random) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t raw[16];
  const uint64_t a = random.next(), b = random.next();
  for (int i = 0; i < 8; ++i) {
    raw[i] = static_cast<uint8_t>(a >> (8 * i));
    raw[8 + i] = static_cast<uint8_t>(b >> (8 * i));
  }
  std::string out;
  out.reserve(24);
  for (int i = 0; i < 15; i += 3) {  // five full groups: 20 characters
    const uint32_t n = (uint32_t{raw[i]} << 16) | (uint32_t{raw[i + 1]} << 8) | raw[i + 2];
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  const uint32_t n = uint32_t{raw[15]} << 16;  // the last byte: two characters and "=="
  out += kAlphabet[(n >> 18) & 63];
  out += kAlphabet[(n >> 12) & 63];
  out += "==";
  return out;
}

}  // namespace sidecar::proxy
