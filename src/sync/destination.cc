#include "sync/destination.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sync/git_source.h"

namespace sidecar::sync {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kTmp = ".tmp-";

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

// Atomically points `link` at `target` (relative): a new symlink under a
// temporary name, renamed over the old one.
void switch_link(const std::string& link, const std::string& target) {
  const std::string tmp = link + kTmp.data() + random_suffix();
  if (::symlink(target.c_str(), tmp.c_str()) != 0) {
    throw SyncError(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), link.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw SyncError(fmt::format("cannot switch {}: {}", link, std::strerror(err)));
  }
}

}  // namespace

Destination::Destination(std::string root, std::string link, std::string copy_to,
                         std::chrono::milliseconds keep_old_for)
    : root_(std::move(root)),
      revisions_(root_ + "/.revisions"),
      link_(root_ + "/" + link),
      copy_to_(std::move(copy_to)),
      keep_old_for_(keep_old_for) {
  std::error_code ec;
  fs::create_directories(revisions_, ec);
  if (ec) throw SyncError(fmt::format("cannot create {}: {}", revisions_, ec.message()));
  if (!copy_to_.empty()) fs::create_directories(copy_to_, ec);
  const std::string current = live();
  for (const auto& entry : fs::directory_iterator(revisions_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != current) retired_.push_back({name, Clock::now()});
  }
}

std::string Destination::live() const {
  std::error_code ec;
  const fs::path target = fs::read_symlink(link_, ec);
  if (ec) return {};
  return target.filename().string();
}

std::string Destination::revision_dir(const std::string& id) const { return revisions_ + "/" + id; }

std::string Destination::state_file(const std::string& name) const { return root_ + "/." + name; }

void Destination::publish(const std::string& id,
                          const std::function<void(const std::string&)>& fill) {
  const std::string dir = revision_dir(id);
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    const std::string tmp = revisions_ + "/" + std::string(kTmp) + id + "-" + random_suffix();
    fs::create_directory(tmp, ec);
    if (ec) throw SyncError(fmt::format("cannot create {}: {}", tmp, ec.message()));
    try {
      fill(tmp);
    } catch (...) {
      fs::remove_all(tmp, ec);
      throw;
    }
    if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      const int err = errno;
      fs::remove_all(tmp, ec);
      throw SyncError(fmt::format("cannot rename {} to {}: {}", tmp, dir, std::strerror(err)));
    }
  }
  const std::string old = live();
  switch_link(link_, ".revisions/" + id);
  // The new one is live: it must not be removed, even if it was retired before.
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                [&id](const Retired& r) { return r.id == id; }),
                 retired_.end());
  if (!old.empty() && old != id) retired_.push_back({old, Clock::now()});
  if (!copy_to_.empty()) copy_out(dir);
}

void Destination::copy_out(const std::string& from) {
  std::error_code ec;
  std::set<fs::path> wanted;
  for (auto it = fs::recursive_directory_iterator(from, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path rel = fs::relative(it->path(), from, ec);
    const fs::path target = fs::path(copy_to_) / rel;
    wanted.insert(rel);
    if (it->is_symlink()) {
      switch_link(target.string(), fs::read_symlink(it->path(), ec).string());
    } else if (it->is_directory()) {
      fs::create_directories(target, ec);
    } else {
      // Each file replaced at once: copied under a temporary name, renamed.
      const std::string tmp = target.string() + std::string(kTmp) + random_suffix();
      fs::copy_file(it->path(), tmp, fs::copy_options::overwrite_existing, ec);
      if (ec) throw SyncError(fmt::format("cannot copy to {}: {}", tmp, ec.message()));
      if (::rename(tmp.c_str(), target.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw SyncError(fmt::format("cannot replace {}: {}", target.string(), std::strerror(err)));
      }
    }
  }
  // Then what the new revision no longer has.
  std::vector<fs::path> gone;
  for (auto it = fs::recursive_directory_iterator(copy_to_, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path rel = fs::relative(it->path(), copy_to_, ec);
    if (wanted.count(rel) == 0) gone.push_back(it->path());
  }
  for (auto it = gone.rbegin(); it != gone.rend(); ++it) fs::remove_all(*it, ec);
}

void Destination::cleanup() {
  const auto now = Clock::now();
  std::error_code ec;
  for (auto it = retired_.begin(); it != retired_.end();) {
    if (now - it->since < keep_old_for_) {
      ++it;
      continue;
    }
    fs::remove_all(revision_dir(it->id), ec);
    if (ec) spdlog::warn("sync: cannot remove {}: {}", revision_dir(it->id), ec.message());
    it = retired_.erase(it);
  }
}

}  // namespace sidecar::sync
