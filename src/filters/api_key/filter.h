// The `api_key` filter: only requests with a known API key pass; the key's
// client name goes to the app in `client_header` (docs/security.md).
//
// Keys file: one "client: key" or "client: sha256:<64 hex>" per line, `#`
// comments; re-read when it changes (mtime, size or inode, checked at most
// once a second; a file that stops parsing keeps the previous keys). Keys are
// kept as SHA-256 digests; a presented key is hashed and compared with every
// entry in constant time (crypto::constant_time_equal, no early exit), so neither timing
// nor the order of the file tells which key is close.
//
// Refused: 401 "api_key_missing" / "api_key_invalid" in
// %RESPONSE_CODE_DETAILS% and sidecar_api_key_denied_total{reason};
// sidecar_api_key_allowed_total. The key is never logged; unless `forward`
// it is removed from the request (header, or query parameter).
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/file_version.h"
#include "filters/api_key/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::api_key {

using Digest = std::array<unsigned char, 32>;

struct Entry {
  std::string client;
  Digest digest;
};

// Parses a keys file; false with `why` (line number) on a bad line.
bool parse_keys(std::string_view text, std::vector<Entry>& out, std::string& why);
Digest sha256(std::string_view data);

// The keys of one keys_file, shared by workers.
class KeyStore {
 public:
  explicit KeyStore(std::string path);
  // The current entries (re-read when the file changed), or null.
  std::shared_ptr<const std::vector<Entry>> entries();

 private:
  void load();
  const std::string path_;
  std::mutex mutex_;
  std::shared_ptr<const std::vector<Entry>> entries_;
  std::chrono::steady_clock::time_point checked_{};
  core::FileVersion version_;
};

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  const std::shared_ptr<KeyStore> store;
  FilterCounter& allowed;
  FilterCounter& missing;
  FilterCounter& invalid;
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;

 private:
  const std::shared_ptr<const Factory> factory_;
};

}  // namespace sidecar::filters::api_key
