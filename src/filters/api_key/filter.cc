#include "filters/api_key/filter.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include <spdlog/spdlog.h>

#include "crypto/crypto.h"
#include "filters/query.h"

namespace sidecar::filters::api_key {
namespace {

constexpr const char* kDenied = "sidecar_api_key_denied_total";
constexpr const char* kDeniedHelp = "Requests refused by api_key, by reason.";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Digest sha256(std::string_view data) {
  Digest d{};
  const std::string s = crypto::library().digest(crypto::Hash::kSha256, data);
  if (s.size() == d.size()) std::memcpy(d.data(), s.data(), d.size());
  return d;
}

bool parse_keys(std::string_view text, std::vector<Entry>& out, std::string& why) {
  out.clear();
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      why = "line " + std::to_string(line_no) + ": expected 'client: key'";
      return false;
    }
    Entry e;
    e.client = std::string(trim(line.substr(0, colon)));
    std::string_view key = trim(line.substr(colon + 1));
    bool ok = !e.client.empty() && !key.empty();
    for (char c : e.client) ok = ok && static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
    if (!ok) {
      why = "line " + std::to_string(line_no) + ": empty or invalid client or key";
      return false;
    }
    if (key.starts_with("sha256:")) {
      key.remove_prefix(7);
      if (key.size() != 64) {
        why = "line " + std::to_string(line_no) + ": sha256: needs 64 hex digits";
        return false;
      }
      for (size_t i = 0; i < 32; ++i) {
        const int hi = hex(key[2 * i]), lo = hex(key[2 * i + 1]);
        if (hi < 0 || lo < 0) {
          why = "line " + std::to_string(line_no) + ": sha256: needs 64 hex digits";
          return false;
        }
        e.digest[i] = static_cast<unsigned char>(hi * 16 + lo);
      }
    } else {
      e.digest = sha256(key);
    }
    out.push_back(std::move(e));
  }
  return true;
}

KeyStore::KeyStore(std::string path) : path_(std::move(path)) {
  std::lock_guard lock(mutex_);
  load();
}

void KeyStore::load() {
  checked_ = std::chrono::steady_clock::now();
  switch (version_.check(path_)) {
    case core::FileVersion::Check::kUnreadable:
      spdlog::error("api_key: cannot read {}", path_);
      return;  // keep what we had; a first load that fails: no key passes
    case core::FileVersion::Check::kStillUnreadable:
    case core::FileVersion::Check::kUnchanged:
      return;
    case core::FileVersion::Check::kChanged:
      break;
  }
  std::string text;
  if (!core::read_file(path_, text)) {
    spdlog::error("api_key: cannot read {}: {}", path_, std::strerror(errno));
    version_ = {};  // read again at the next check
    return;
  }
  auto entries = std::make_shared<std::vector<Entry>>();
  std::string why;
  if (!parse_keys(text, *entries, why)) {
    spdlog::error("api_key: {}: {}{}", path_, why, entries_ ? " (keeping the previous keys)" : "");
    return;
  }
  spdlog::info("api_key: {} keys from {}", entries->size(), path_);
  entries_ = std::move(entries);
}

std::shared_ptr<const std::vector<Entry>> KeyStore::entries() {
  std::lock_guard lock(mutex_);
  if (std::chrono::steady_clock::now() - checked_ >= std::chrono::seconds(1)) load();
  return entries_;
}

Factory::Factory(std::shared_ptr<const Config> c)
    : config(std::move(c)),
      store(config->keys_file.empty() ? nullptr : std::make_shared<KeyStore>(config->keys_file)),
      allowed(*counter("sidecar_api_key_allowed_total", "Requests api_key let through.")),
      missing(*counter(kDenied, kDeniedHelp, {{"reason", "missing"}})),
      invalid(*counter(kDenied, kDeniedHelp, {{"reason", "invalid"}})) {
  crypto::library();  // loaded here, on the main thread, not on a worker's first request
}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  if (const auto* route = static_cast<const Config*>(cb.route_config("api_key"));
      (route != nullptr && route->disabled) || !factory_->store) {
    return http::FilterStatus::kContinue;
  }
  const Config& c = *factory_->config;
  std::string_view key;
  std::string header, param;
  for (const std::string& h : c.from_headers) {
    if (const http::HeaderField* f = cb.request().find(h)) {
      key = f->value;
      header = h;
      break;
    }
  }
  if (header.empty()) {
    for (const std::string& p : c.from_params) {
      if (auto v = query_param(cb.path(), p)) {
        key = *v;
        param = p;
        break;
      }
    }
  }
  if (key.empty()) {
    factory_->missing.add();
    cb.set_response_detail("api_key_missing");
    cb.send_local_reply(401, "api_key: no API key\n");
    return http::FilterStatus::kStopIteration;
  }
  const Digest presented = sha256(key);
  const auto entries = factory_->store->entries();
  const Entry* match = nullptr;
  if (entries) {
    for (const Entry& e : *entries) {
      // Every entry is compared: no early exit.
      const bool same = crypto::constant_time_equal(
          std::string_view(reinterpret_cast<const char*>(e.digest.data()), e.digest.size()),
          std::string_view(reinterpret_cast<const char*>(presented.data()), presented.size()));
      if (same && match == nullptr) match = &e;
    }
  }
  if (match == nullptr) {
    factory_->invalid.add();
    cb.set_response_detail("api_key_invalid");
    cb.send_local_reply(401, "api_key: unknown API key\n");
    return http::FilterStatus::kStopIteration;
  }
  factory_->allowed.add();
  if (!c.client_header.empty()) cb.set_request_header(c.client_header, match->client);
  if (!c.forward) {
    if (!header.empty()) cb.remove_request_header(header);
    if (!param.empty()) cb.set_request_path(without_param(cb.path(), param));
  }
  return http::FilterStatus::kContinue;
}

}  // namespace sidecar::filters::api_key
