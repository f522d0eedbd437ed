// SIDECAR_ASAN is defined when building with AddressSanitizer (GCC defines
// __SANITIZE_ADDRESS__, Clang answers __has_feature). Pools and free lists
// step aside under it, so that ASan sees every block taken and freed.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define SIDECAR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIDECAR_ASAN 1
#endif
#endif
