#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "sync/sync.h"

namespace sidecar::sync {
namespace {

// libsidecar-sync.so next to the running binary.
std::string module_path() {
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "libsidecar-sync.so";
  std::string dir(exe, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/') + 1) + "libsidecar-sync.so";
}

CreateFn load() {
  static CreateFn create = [] {
    const std::string path = module_path();
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      throw std::runtime_error(fmt::format("sync needs {}: {}", path, ::dlerror()));
    }
    auto fn = reinterpret_cast<CreateFn>(::dlsym(handle, kCreateSymbol));
    if (fn == nullptr) throw std::runtime_error(fmt::format("{} has no {}", path, kCreateSymbol));
    return fn;  // never unloaded
  }();
  return create;
}

}  // namespace

std::unique_ptr<Sync> create(const config::Sync& config, Host& host) {
  return std::unique_ptr<Sync>(load()(config, host));
}

}  // namespace sidecar::sync
