// One grpc.health.v1.Health/Check call over a fresh HTTP/2 connection
// (nghttp2 client; h2c with prior knowledge, or h2 over the cluster's TLS),
// for active gRPC health checks (health_checker.h). The request is
// HealthCheckRequest{service}; the endpoint is serving when the response is
// HealthCheckResponse{status: SERVING} with grpc-status 0 (grpc/health.proto).
//
// Thread safety: one thread (the health thread).
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace sidecar::net {
class Transport;
}

namespace sidecar::upstream {

class GrpcHealthCall {
 public:
  enum class Result { kServing, kNotServing, kError };
  // `done` is called once (not from start() itself).
  using Done = std::function<void(Result, const std::string& why)>;
  GrpcHealthCall(net::Transport& transport, std::string authority, std::string service, Done done);
  ~GrpcHealthCall();
  GrpcHealthCall(const GrpcHealthCall&) = delete;
  GrpcHealthCall& operator=(const GrpcHealthCall&) = delete;

  void start();

  struct State;  // health_grpc.cc

 private:
  std::shared_ptr<State> state_;
};

// The HealthCheckResponse status in a gRPC message (5-byte prefix + protobuf),
// or -1 when it does not parse. Exposed for tests.
int parse_health_response(const std::string& message);

}  // namespace sidecar::upstream
