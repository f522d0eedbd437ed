// HTTP requests that filters make themselves (http::AsyncClient): to a
// cluster of the worker's current config, over the same upstream code and
// connection pools as proxied requests, on the worker's thread. One per
// worker.
//
// The response body is read whole, up to kMaxBody bytes (a larger one is an
// error): this is for small control exchanges (an authorization decision, a
// JWKS, a token), not for proxying.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "http/filter.h"

namespace sidecar::proxy {

class Worker;

class WorkerHttpClient final : public http::AsyncClient {
 public:
  static constexpr size_t kMaxBody = 1024 * 1024;  // bytes

  explicit WorkerHttpClient(Worker& worker);
  ~WorkerHttpClient();

  uint64_t send(std::string_view cluster, http::ClientRequest request, Done done) override;
  void cancel(uint64_t handle) override;

 private:
  class Exchange;
  void finish(uint64_t id, http::ClientResponse response);

  Worker& worker_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Exchange>> live_;
};

}  // namespace sidecar::proxy
