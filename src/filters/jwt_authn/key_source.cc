#include "filters/jwt_authn/key_source.h"

#include <atomic>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace sidecar::filters::jwt_authn {
namespace {

constexpr auto kFileCheckPeriod = std::chrono::seconds(1);
constexpr auto kUnknownKidRefetch = std::chrono::seconds(30);
constexpr auto kRetryAfterFailure = std::chrono::seconds(1);
constexpr size_t kMaxJwksSize = 1024 * 1024;
std::atomic<uint64_t> next_id{1};

}  // namespace

KeySource::KeySource(const Provider& provider)
    : provider_(provider),
      id_(next_id.fetch_add(1, std::memory_order_relaxed)),
      fetch_ok_(*counter("sidecar_jwt_authn_jwks_fetches_total",
                         "JWKS fetches of remote_jwks providers, by result.",
                         {{"provider", provider.name}, {"result", "ok"}})),
      fetch_failed_(*counter("sidecar_jwt_authn_jwks_fetches_total",
                             "JWKS fetches of remote_jwks providers, by result.",
                             {{"provider", provider.name}, {"result", "error"}})) {
  if (!provider_.local_jwks_inline.empty()) {
    auto jwks = std::make_shared<Jwks>();
    std::string why;
    if (parse_jwks(provider_.local_jwks_inline, *jwks, why)) {
      keys_ = std::move(jwks);
    } else {
      spdlog::error("jwt_authn: provider {}: inline JWKS: {}", provider_.name, why);
    }
  } else if (!provider_.local_jwks_filename.empty()) {
    load_file();
  }
}

void KeySource::load_file() {
  // Called with mutex_ held, or from the constructor.
  checked_ = Clock::now();
  switch (version_.check(provider_.local_jwks_filename)) {
    case core::FileVersion::Check::kUnreadable:
      spdlog::error("jwt_authn: provider {}: cannot read {}", provider_.name,
                    provider_.local_jwks_filename);
      return;
    case core::FileVersion::Check::kStillUnreadable:
    case core::FileVersion::Check::kUnchanged:
      return;
    case core::FileVersion::Check::kChanged:
      break;
  }
  if (version_.size() > kMaxJwksSize) {
    spdlog::error("jwt_authn: provider {}: {} is larger than 1 MiB", provider_.name,
                  provider_.local_jwks_filename);
    return;
  }
  std::string text;
  if (!core::read_file(provider_.local_jwks_filename, text)) {
    spdlog::error("jwt_authn: provider {}: cannot read {}: {}", provider_.name,
                  provider_.local_jwks_filename, std::strerror(errno));
    version_ = {};  // read again at the next check
    return;
  }
  auto jwks = std::make_shared<Jwks>();
  std::string why;
  size_t skipped = 0;
  if (!parse_jwks(text, *jwks, why, &skipped)) {
    spdlog::error("jwt_authn: provider {}: {}: {}{}", provider_.name, provider_.local_jwks_filename,
                  why, keys_ ? " (keeping the previous keys)" : "");
    return;
  }
  spdlog::info("jwt_authn: provider {}: {} keys from {}{}", provider_.name, jwks->keys.size(),
               provider_.local_jwks_filename,
               skipped ? fmt::format(" ({} skipped)", skipped) : std::string());
  keys_ = std::move(jwks);
}

std::shared_ptr<const Jwks> KeySource::keys() {
  std::lock_guard lock(mutex_);
  if (!provider_.local_jwks_filename.empty() && Clock::now() - checked_ >= kFileCheckPeriod)
    load_file();
  return keys_;
}

KeySource::Need KeySource::need(const std::shared_ptr<const Jwks>& keys, bool unknown_kid) {
  if (!provider_.remote) return Need::kNothing;
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  if (!keys) return now >= retry_after_ || fetching_ ? Need::kWait : Need::kNothing;
  if (unknown_kid && fetching_) return Need::kWait;
  if (unknown_kid &&
      (last_kid_refetch_ == Clock::time_point{} || now - last_kid_refetch_ >= kUnknownKidRefetch)) {
    last_kid_refetch_ = now;  // rotation: a new kid may be published; not more often than this
    return Need::kWait;
  }
  if (!fetching_ && now - fetched_at_ >= provider_.cache_duration && now >= retry_after_)
    return Need::kRefreshInBackground;
  return Need::kNothing;
}

void KeySource::fetch(http::AsyncClient& client, boost::asio::io_context& io,
                      std::function<void()> wake) {
  {
    std::lock_guard lock(mutex_);
    if (wake) waiters_.push_back({&io, std::move(wake)});
    if (fetching_) return;
    fetching_ = true;
    last_start_ = Clock::now();
    ++fetches_;
  }
  http::ClientRequest request;
  request.path = provider_.remote_path;
  request.authority = provider_.remote_host;
  request.headers.emplace_back("accept", "application/json");
  request.timeout = provider_.remote_timeout;
  client.send(
      provider_.remote_cluster, std::move(request),
      [self = shared_from_this()](http::ClientResponse response) { self->fetched(response); });
}

void KeySource::fetched(const http::ClientResponse& response) {
  std::shared_ptr<Jwks> jwks;
  std::string why;
  if (response.status != 200) {
    why = response.status == 0 ? response.error : fmt::format("status {}", response.status);
  } else if (response.body.size() > kMaxJwksSize) {
    why = "larger than 1 MiB";
  } else {
    jwks = std::make_shared<Jwks>();
    if (!parse_jwks(response.body, *jwks, why)) jwks.reset();
  }
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mutex_);
    fetching_ = false;
    if (jwks) {
      keys_ = jwks;
      fetched_at_ = Clock::now();
    } else {
      retry_after_ = Clock::now() + kRetryAfterFailure;
    }
    waiters.swap(waiters_);
  }
  if (jwks) {
    fetch_ok_.add();
    spdlog::debug("jwt_authn: provider {}: {} keys from {}", provider_.name, jwks->keys.size(),
                  provider_.remote_uri);
  } else {
    fetch_failed_.add();
    spdlog::warn("jwt_authn: provider {}: JWKS fetch from {} failed: {}", provider_.name,
                 provider_.remote_uri, why);
  }
  for (Waiter& w : waiters) boost::asio::post(*w.io, std::move(w.wake));
}

uint64_t KeySource::fetches() const {
  std::lock_guard lock(mutex_);
  return fetches_;
}

}  // namespace sidecar::filters::jwt_authn
