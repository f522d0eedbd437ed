// Registration of this app in etcd (docs/registry.md "Registration"): a
// lease of `ttl`, the instance's key put with it, keepalives every ttl/3,
// and the lease revoked when the app stops being ready or the sidecar shuts
// down. On its own thread, never on a worker.
//
// Failure handling: a failed keepalive is retried with backoff (500ms
// doubling, at most ttl/3) on the next endpoint; a lease etcd no longer
// knows (keepalive TTL 0, "lease not found", or no successful keepalive for
// a whole TTL) is replaced at once by a new lease and the key put again; a
// key deleted or overwritten by someone else is put back at once: a watch on
// the own key (a second thread, its own etcd connection) wakes the
// registrar, and the key is also read after each keepalive in case the watch
// was down.
//
// Thread safety: status() from any thread; the rest from the main thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "module/module.h"
#include "registry/config.h"
#include "registry/etcd_client.h"

namespace sidecar::registry {

struct RegistrarStatus {
  std::string state = "starting";  // starting | waiting_ready | registered | failing | stopped
  std::string key;
  std::string value;
  std::string endpoint;  // etcd endpoint in use
  int64_t lease_id = 0;
  double ttl_left_seconds = 0;  // of the lease, as of the last keepalive
  bool registered = false;
  uint64_t registrations = 0;    // puts of the key with a new lease
  uint64_t reregistrations = 0;  // ... because the lease or key was lost
  uint64_t deregistrations = 0;  // leases revoked
  uint64_t keepalive_failures = 0;
  uint64_t key_restores = 0;     // key deleted by someone else, put back
  uint64_t authentications = 0;  // auth tokens obtained (the first and refreshes)
  std::string last_error;
};

class Registrar {
 public:
  // `service` has its defaults filled in (name, instance_id, address, port).
  Registrar(EtcdSettings etcd, ServiceSettings service, module::Host& host);
  ~Registrar();

  void start();
  // Shutdown step 1: revoke the lease now; waits for it up to `timeout`.
  void deregister(std::chrono::milliseconds timeout);
  // Stops the thread by `deadline` (left detached if a transfer still runs:
  // it holds its own state).
  void stop(std::chrono::steady_clock::time_point deadline);
  RegistrarStatus status() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::thread thread_;
  std::thread watcher_;  // the own key's watch
};

// The defaults of ServiceSettings: the host name, the first non-loopback
// IPv4 (else IPv6) address, the first inbound listener's port.
ServiceSettings with_defaults(ServiceSettings s, const config::Config& config, std::string& why);

}  // namespace sidecar::registry
