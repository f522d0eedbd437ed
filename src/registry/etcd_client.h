// An etcd v3 client over the JSON gateway (etcd_json.h) on libcurl: several
// endpoints with failover, TLS with client certificates, and
// username/password auth tokens (re-authenticated when etcd says the token
// is invalid or expired).
//
// Every transfer is bounded (EtcdSettings::timeout for a call, the given
// duration for a stream) and returns early once `stop` is set, so a module
// thread using it never holds up shutdown for longer than that.
//
// Thread safety: one Client per thread (it owns a curl handle); endpoint()
// may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "registry/config.h"
#include "registry/etcd_json.h"

namespace sidecar::registry {

class EtcdClient {
 public:
  EtcdClient(EtcdSettings settings, const std::atomic<bool>& stop);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  struct Reply {
    bool answered = false;  // some endpoint answered with HTTP (any status)
    long status = 0;        // its HTTP status
    std::string body;
    etcd::Error error;            // when the body is a gateway error
    std::string transport_error;  // when no endpoint answered
    bool ok() const { return answered && status == 200; }
    // "what went wrong", for logs.
    std::string describe() const;
  };

  // POSTs `body` to `path` ("/v3/kv/put"). Tries the endpoint in use, then
  // the others in turn, on a transport error or a 5xx answer (etcd
  // unavailable, no leader); the one that answers stays in use.
  Reply call(std::string_view path, const std::string& body);

  // POSTs `body` to the streaming `path` ("/v3/watch") on one endpoint (the
  // one in use, the next one after a failure) and calls `on_line` with every
  // newline-terminated message until the stream ends, `on_line` returns
  // false, stop is set, or `max_duration` passes. Returns false (with
  // `error`) on a transport or HTTP error.
  bool stream(std::string_view path, const std::string& body,
              const std::function<bool(std::string_view)>& on_line,
              std::chrono::milliseconds max_duration, std::string& error);

  // The base URL in use (the last to answer).
  std::string endpoint() const;
  // Authentications done (the first and every refresh).
  uint64_t authentications() const { return authentications_.load(); }

 private:
  Reply post_once(const std::string& base, std::string_view path, const std::string& body);
  bool authenticate(const std::string& base, std::string& why);
  void setup(const std::string& url, const std::string& body, std::chrono::milliseconds timeout);

  const EtcdSettings settings_;
  const std::atomic<bool>& stop_;
  void* curl_ = nullptr;
  std::string token_;
  mutable std::mutex mutex_;  // guards current_ for endpoint()
  size_t current_ = 0;
  std::atomic<uint64_t> authentications_{0};
};

}  // namespace sidecar::registry
