#include "module/module.h"

#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

namespace sidecar::module {
namespace {

std::vector<Kind>& kinds() {
  static std::vector<Kind> k;
  return k;
}

// The directory of the running binary, where its modules are installed.
std::string binary_dir() {
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  std::string dir(exe, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/') + 1);
}

// Loads libsidecar-<key>.so once; never unloaded (its code may run until exit).
CreateFn load_shared(const std::string& key) {
  static std::mutex mutex;
  static std::map<std::string, CreateFn> loaded;
  std::lock_guard lock(mutex);
  if (auto it = loaded.find(key); it != loaded.end()) return it->second;
  const std::string path = binary_dir() + "libsidecar-" + key + ".so";
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    throw std::runtime_error(fmt::format("{} needs {}: {}", key, path, ::dlerror()));
  }
  auto fn = reinterpret_cast<CreateFn>(::dlsym(handle, kCreateSymbol));
  if (fn == nullptr) throw std::runtime_error(fmt::format("{} has no {}", path, kCreateSymbol));
  loaded[key] = fn;
  return fn;
}

}  // namespace

void register_kind(Kind kind) {
  config::register_section(kind.key, kind.parse);
  for (Kind& k : kinds()) {
    if (k.key == kind.key) {
      k = std::move(kind);
      return;
    }
  }
  kinds().push_back(std::move(kind));
}

std::unique_ptr<Module> create(const std::string& key, const config::Section& section, Host& host) {
  for (const Kind& k : kinds()) {
    if (k.key != key) continue;
    const CreateFn fn = k.create != nullptr ? k.create : load_shared(key);
    return std::unique_ptr<Module>(fn(section, host));
  }
  throw std::logic_error("no module kind " + key);
}

std::vector<std::unique_ptr<Module>> create_all(const config::Config& config, Host& host) {
  std::vector<std::unique_ptr<Module>> out;
  for (const Kind& k : kinds()) {
    if (const config::Section* s = config.section(k.key)) out.push_back(create(k.key, *s, host));
  }
  return out;
}

std::vector<std::string> keys() {
  std::vector<std::string> out;
  for (const Kind& k : kinds()) out.push_back(k.key);
  return out;
}

}  // namespace sidecar::module
