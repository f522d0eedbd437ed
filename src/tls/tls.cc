#include "tls/tls.h"

#include "core/shared_object.h"

namespace sidecar::tls {

const Library& library() {
  using Entry = const Library* (*)();
  static const Library* lib = reinterpret_cast<Entry>(core::load_symbol("tls", kLibrarySymbol))();
  return *lib;
}

bool uses_tls(const config::Config& config) {
  for (const config::Listener& l : config.listeners) {
    if (l.tls.enabled) return true;
  }
  for (const config::Cluster& c : config.clusters) {
    if (c.tls.enabled) return true;
  }
  return false;
}

}  // namespace sidecar::tls
