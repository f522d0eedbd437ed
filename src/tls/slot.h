// Where a TLS listener or cluster publishes its current context: written by
// the certificate store (main thread) when files change, read by workers
// when a connection starts (a mutex held for a pointer copy; a handshake
// costs a thousand times more).
#pragma once

#include <memory>
#include <mutex>

namespace sidecar::tls {

class ServerContext;
class ClientContext;

template <typename T>
class Slot {
 public:
  std::shared_ptr<const T> get() const {
    std::lock_guard lock(mutex_);
    return value_;
  }
  void set(std::shared_ptr<const T> v) {
    std::lock_guard lock(mutex_);
    value_ = std::move(v);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const T> value_;
};

using ServerSlot = Slot<ServerContext>;
using ClientSlot = Slot<ClientContext>;

}  // namespace sidecar::tls
