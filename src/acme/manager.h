// Keeps one ACME certificate current: a thread that serves the stored
// certificate at once, obtains one when there is none (or it does not cover
// the configured domains, or came from another directory), renews it at its
// renewal time (schedule.h), and retries failures with jittered exponential
// backoff, never sooner than the server's Retry-After.
//
// One attempt [RFC 8555 7]: the account (registered once, its URL stored;
// a server that forgot it gets a new registration with the same key), a new
// order, each pending authorization answered over HTTP-01 (the key
// authorization is published to every plain HTTP listener through the
// Host, then the challenge is posted and the authorization polled), the
// order polled until ready, a fresh key and CSR (acme.key_type), finalize,
// the order polled until valid, the chain downloaded, checked against the
// key and the domains, stored (storage.h), and served on acme.listener.
// Polls wait for Retry-After when the server sends one, else 0.5 s doubling
// to 5 s; the whole attempt is bounded by acme.timeout.
//
// Thread safety: status(), renew_now() and stop() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "acme/client.h"
#include "acme/config.h"
#include "acme/schedule.h"
#include "acme/storage.h"
#include "module/module.h"

namespace sidecar::acme {

struct AcmeStatus {
  // "starting", "obtaining", "valid" (serving, waiting to renew), "retrying"
  // (the last attempt failed), "stopped".
  std::string state = "starting";
  std::string account_url;
  bool account_registered = false;  // this process created or looked up the account
  std::string order_url;            // the last order
  std::string serial;               // the certificate served, "" before the first one
  int64_t not_before = 0, not_after = 0;
  std::string certificate_path;  // its storage directory
  std::string certificate_from;  // "storage" (loaded at start) or "order"
  double next_renewal = 0;       // seconds since the epoch; 0: none planned
  double next_attempt = 0;       // after a failure
  double last_success_time = 0;
  std::string last_error;
  uint64_t issuances = 0, issuance_failures = 0;  // no certificate yet
  uint64_t renewals = 0, renewal_failures = 0;    // replacing a certificate
  uint64_t rate_limited = 0;                      // answers with rateLimited or 429
  uint32_t consecutive_failures = 0;
};

class Manager {
 public:
  Manager(AcmeConfig config, module::Host& host);
  ~Manager();  // stop()

  void start();
  // Interrupts waits and transfers (within a second) and joins the thread.
  void stop();
  // Starts an attempt now (admin POST /acme/renew), even before the renewal time.
  void renew_now();
  AcmeStatus status() const;
  const AcmeConfig& config() const { return config_; }

 private:
  void run();
  void load_stored();
  // One attempt: account, order, authorizations, finalize, store, serve.
  // Throws AcmeError (or std::runtime_error from storage and keys).
  void obtain();
  void ensure_account();
  void order();
  class Published;
  // Publishes the key authorization and posts the challenge; false when
  // the authorization is valid already.
  bool start_authorization(const std::string& url, Published& published);
  // Polls until the authorization is valid; throws when it is not.
  void finish_authorization(const std::string& url);
  // Polls the order while its status is `waiting`, the first time after
  // `retry_after` when the server sent one.
  Order poll_order(const std::string& url, Order order, const char* waiting,
                   std::optional<std::chrono::seconds> retry_after);
  void serve(const StoredCertificate& c, const std::string& from);
  bool due() const;
  template <typename Fn>
  void update(Fn&& fn) {
    std::lock_guard lock(mutex_);
    fn(status_);
  }

  const AcmeConfig config_;
  module::Host& host_;
  Storage storage_;
  Interrupt interrupt_;
  std::unique_ptr<Client> client_;
  PrivateKey account_key_;
  std::string thumbprint_;
  bool have_certificate_ = false;
  bool warned_lifetime_ = false;
  bool reissue_ = false;  // the stored one does not match the config
  SystemTime renew_at_{};

  mutable std::mutex mutex_;
  AcmeStatus status_;
  std::thread thread_;
};

}  // namespace sidecar::acme
