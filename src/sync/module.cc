// The entry point of libsidecar-sync.so (see sync.h).
#include "sync/syncer.h"

extern "C" __attribute__((visibility("default"))) sidecar::sync::Sync* sidecar_sync_create(
    const sidecar::config::Sync& config, sidecar::sync::Host& host) {
  return new sidecar::sync::Syncer(config, host);
}
