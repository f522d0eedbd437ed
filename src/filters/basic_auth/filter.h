// The `basic_auth` filter: only requests with a user and password of the
// htpasswd list pass [RFC 7617]; the user goes to the app in
// `forward_username_header` (docs/security.md).
//
// The list is re-read when its file changes (mtime, size or inode, checked
// at most once a second; a file that stops parsing keeps the previous list).
// bcrypt, SHA-crypt and yescrypt cost milliseconds by design, so they are
// verified on one process-wide verifier thread and the request resumes
// afterwards (the filter contract's asynchronous continuation); the event
// loop never runs them. A verified user/password/hash triple is remembered
// (as an HMAC under a per-process random key, at most 4096, forgotten when
// the list changes) so a client's next request costs a hash, not a bcrypt.
// An unknown user is checked against a dummy bcrypt hash, so the answer's
// timing does not tell which users exist.
//
// Refused: 401 with `WWW-Authenticate: Basic realm="...", charset="UTF-8"`;
// %RESPONSE_CODE_DETAILS% basic_auth_missing / basic_auth_invalid;
// sidecar_basic_auth_denied_total{reason}, sidecar_basic_auth_allowed_total.
// Passwords are never logged; unless `forward`, Authorization is removed.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/file_version.h"
#include "filters/basic_auth/config.h"
#include "filters/basic_auth/htpasswd.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::basic_auth {

// The users of one list, shared by workers. Thread-safe.
class UserStore {
 public:
  explicit UserStore(const Config& config);
  // The current users (the file re-read when it changed), or null.
  std::shared_ptr<const std::vector<User>> users();
  // Whether this user/password/hash was verified before (and remembers it).
  bool known_good(std::string_view user, std::string_view password, std::string_view hash);
  void remember(std::string_view user, std::string_view password, std::string_view hash);

 private:
  std::string tag(std::string_view user, std::string_view password, std::string_view hash) const;
  void load();
  const std::string path_;
  std::mutex mutex_;
  std::shared_ptr<const std::vector<User>> users_;
  std::unordered_set<std::string> verified_;
  std::array<unsigned char, 32> key_{};
  std::chrono::steady_clock::time_point checked_{};
  core::FileVersion version_;
};

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config);
  std::unique_ptr<http::HttpFilter> create() const override;

  const std::shared_ptr<const Config> config;
  const std::shared_ptr<UserStore> store;
  const std::string challenge;  // the WWW-Authenticate value
  FilterCounter& allowed;
  FilterCounter& missing;
  FilterCounter& invalid;
  FilterCounter& overloaded;
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  ~Filter() override;
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_stream_end() override;

  // What a pending verification reports back to (shared with the verifier).
  struct Pending;

 private:
  void allow(http::FilterCallbacks& cb, const std::string& user);
  void deny(http::FilterCallbacks& cb, bool missing);
  void finish(bool ok);

  const std::shared_ptr<const Factory> factory_;
  std::shared_ptr<Pending> pending_;
  http::FilterCallbacks* cb_ = nullptr;
  std::string user_, password_, hash_;
};

}  // namespace sidecar::filters::basic_auth
