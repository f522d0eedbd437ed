#include "tls/acme_challenges.h"

#include <atomic>
#include <map>
#include <mutex>

namespace sidecar::tls {
namespace {

std::mutex mutex;
std::map<std::string, std::string, std::less<>> pending;
std::atomic<bool> any{false};

}  // namespace

void set_acme_challenge(const std::string& token, const std::string& key_authorization) {
  std::lock_guard lock(mutex);
  pending[token] = key_authorization;
  any.store(true, std::memory_order_release);
}

void clear_acme_challenge(const std::string& token) {
  std::lock_guard lock(mutex);
  pending.erase(token);
  any.store(!pending.empty(), std::memory_order_release);
}

bool find_acme_challenge(std::string_view token, std::string& key_authorization) {
  if (!any.load(std::memory_order_acquire)) return false;
  std::lock_guard lock(mutex);
  auto it = pending.find(token);
  if (it == pending.end()) return false;
  key_authorization = it->second;
  return true;
}

}  // namespace sidecar::tls
