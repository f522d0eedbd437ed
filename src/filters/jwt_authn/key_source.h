// The keys of one jwt_authn provider, shared by every worker of a config
// snapshot:
//   - local_jwks.filename: read at start, re-read when the file's mtime or
//     size changes (checked at most once a second, by the request that
//     notices); a file that no longer parses keeps the previous keys;
//   - local_jwks.inline_string: parsed once;
//   - remote_jwks: fetched through a cluster with the worker's AsyncClient.
//     The first requests wait for the first fetch; after cache_duration the
//     keys are refetched in the background while the old ones still serve;
//     a token with an unknown kid triggers at most one refetch per 30 s.
//     One fetch at a time for all workers; requests that wait are woken on
//     their own worker (post) when it ends.
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
#include "filters/jwt_authn/config.h"
#include "filters/jwt_authn/jwt.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::jwt_authn {

class KeySource : public std::enable_shared_from_this<KeySource> {
 public:
  using Clock = std::chrono::steady_clock;
  explicit KeySource(const Provider& provider);

  // The current keys, or null (remote, not fetched yet; a bad file).
  std::shared_ptr<const Jwks> keys();

  // Remote only. What the request should do about the keys it has.
  enum class Need { kNothing, kWait, kRefreshInBackground };
  Need need(const std::shared_ptr<const Jwks>& keys, bool unknown_kid);
  // Starts a fetch unless one runs; `wake` (may be empty) runs on `io` when
  // the fetch in flight ends, whatever its outcome.
  void fetch(http::AsyncClient& client, boost::asio::io_context& io, std::function<void()> wake);

  // Unique for the life of the process (keys the verified-token cache).
  uint64_t id() const { return id_; }

  // Remote JWKS fetches so far, for tests.
  uint64_t fetches() const;

 private:
  void load_file();
  void fetched(const http::ClientResponse& response);

  const Provider provider_;  // a copy: a fetch in flight may outlive the config
  const uint64_t id_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Jwks> keys_;
  // local file
  Clock::time_point checked_{};
  core::FileVersion version_;
  // remote
  bool fetching_ = false;
  Clock::time_point fetched_at_{};
  Clock::time_point last_start_{};
  Clock::time_point last_kid_refetch_{};
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

}  // namespace sidecar::filters::jwt_authn
