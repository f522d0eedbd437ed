// Fast non-cryptographic randomness for one thread (request ids, jitter).
#pragma once

#include <cstdint>

namespace sidecar::core {

// xoshiro256** (Blackman and Vigna), seeded from std::random_device.
// Not thread-safe: one instance per thread.
class Random {
 public:
  Random();
  uint64_t next();

 private:
  uint64_t s_[4];
};

// Writes a random (version 4, RFC 9562 5.4) UUID as 36 lower-case characters
// "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" to `out` (not NUL-terminated).
void format_uuid4(Random& random, char out[36]);

}  // namespace sidecar::core
