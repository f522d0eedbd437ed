// Where credential_injector's credential comes from, shared by every worker
// of a config snapshot:
//   - a file (bearer, basic, header): read at start and again when its mtime,
//     size or inode changes (checked at most once a second, by the request
//     that notices: a Kubernetes projected token or a Vault Agent sink is
//     replaced by rename). Trailing whitespace is dropped; a file that is
//     empty or holds control characters gives no credential;
//   - an OAuth2 token endpoint (RFC 6749 4.4, client credentials): the token
//     is used until 10 s before expires_in, refreshed in the background from
//     80 % of its life, and the requests that find no usable token wait for
//     one fetch that all workers share. After a failed fetch, requests fail
//     at once for a second (no storm against a broken endpoint).
//
// Thread safety: every method may be called from any worker.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/file_version.h"
#include "filters/credential_injector/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::credential_injector {

class Source : public std::enable_shared_from_this<Source> {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Source(const Config& config);

  // The field value to send ("Bearer x", "Basic eA==", "x"), or "" with
  // `why` when there is none now.
  std::string value(std::string& why);

  // OAuth2: whether a request must wait for a fetch; if so, `wake` runs on
  // `io` when it ends (a fetch starts unless one runs). Also starts a
  // background refresh when the token is old.
  bool wait(http::AsyncClient& client, boost::asio::io_context& io, std::function<void()> wake);

  uint64_t fetches() const;

 private:
  void read_file();
  // mutex_ held; fetching_ set. `io`: where a local failure is reported.
  void start_fetch(http::AsyncClient& client, boost::asio::io_context& io);
  void fetched(const http::ClientResponse& response);

  const Config config_;  // a copy: a fetch in flight may outlive the snapshot
  mutable std::mutex mutex_;
  std::string value_;
  std::string why_;
  // file
  Clock::time_point checked_{};
  core::FileVersion version_;
  // oauth2
  bool fetching_ = false;
  Clock::time_point use_until_{};
  Clock::time_point refresh_at_{};
  Clock::time_point retry_after_{};
  uint64_t fetches_ = 0;
  struct Waiter {
    boost::asio::io_context* io;
    std::function<void()> wake;
  };
  std::vector<Waiter> waiters_;
  FilterCounter& fetch_ok_;
  FilterCounter& fetch_failed_;
};

}  // namespace sidecar::filters::credential_injector
