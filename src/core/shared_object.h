// Shared objects installed next to the binary (libsidecar-<name>.so), loaded
// the first time a feature needs them, so that their libraries cost no
// resident memory in a sidecar that does not use the feature.
//
// A shared object links its own copies of the static libraries it uses:
// what crosses the boundary must not depend on the identity of static
// objects (Asio services, Asio error categories, registries). Plain data,
// std types and virtual interfaces do.
//
// Thread-safe. Objects are never unloaded.
#pragma once

#include <string>

namespace sidecar::core {

// The address of `symbol` in libsidecar-<name>.so next to the running
// binary, loading it once. Throws std::runtime_error saying what failed.
void* load_symbol(const std::string& name, const char* symbol);

}  // namespace sidecar::core
