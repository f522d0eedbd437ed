#include "core/shared_object.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

namespace sidecar::core {
namespace {

std::string binary_dir() {
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  std::string dir(exe, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/') + 1);
}

}  // namespace

void* load_symbol(const std::string& name, const char* symbol) {
  static std::mutex mutex;
  static std::map<std::string, void*> handles;
  std::lock_guard lock(mutex);
  const std::string path = binary_dir() + "libsidecar-" + name + ".so";
  void*& handle = handles[path];
  if (handle == nullptr) {
    handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      throw std::runtime_error(fmt::format("{} needs {}: {}", name, path, ::dlerror()));
    }
  }
  void* fn = ::dlsym(handle, symbol);
  if (fn == nullptr) throw std::runtime_error(fmt::format("{} has no {}", path, symbol));
  return fn;
}

}  // namespace sidecar::core
