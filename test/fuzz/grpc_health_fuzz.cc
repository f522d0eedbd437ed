// libFuzzer target for the gRPC health check's response parser
// (src/upstream/health_grpc.h: a gRPC message holding a
// grpc.health.v1.HealthCheckResponse). Checks that it never reads out of
// bounds (ASan) and that its answer is total: -1 or a serving status that
// re-encoding round-trips for the small values a server sends.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "upstream/health_grpc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string message(reinterpret_cast<const char*>(data), size);
  const int status = sidecar::upstream::parse_health_response(message);
  if (status < -1) std::abort();
  if (status >= 0 && status < 128) {
    std::string again("\0\0\0\0\x02\x08", 6);
    again.push_back(static_cast<char>(status));
    if (sidecar::upstream::parse_health_response(again) != status) std::abort();
  }
  return 0;
}
