#include "sync/destination.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sync/git_source.h"

namespace sidecar::sync {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kTmp = ".tmp-";
constexpr std::string_view kComplete = ".complete";

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

// Atomically points `link` at `target`: a new symlink under a temporary
// name, renamed over the old one.
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

void add_group_write(const fs::path& p) {
  std::error_code ec;
  fs::permissions(p, fs::perms::group_write, fs::perm_options::add | fs::perm_options::nofollow,
                  ec);
}

}  // namespace

Destination::Destination(const SyncConfig& c)
    : root_(c.root),
      revisions_(c.root + "/.revisions"),
      link_(fs::path(c.link_path()).lexically_normal().string()),
      copy_to_(c.copy_to),
      keep_old_for_(c.keep_old_for),
      group_write_(c.group_write) {
  std::error_code ec;
  fs::create_directories(revisions_, ec);
  if (ec) throw SyncError(fmt::format("cannot create {}: {}", revisions_, ec.message()));
  const fs::path link_dir = fs::path(link_).parent_path();
  fs::create_directories(link_dir, ec);
  if (ec) throw SyncError(fmt::format("cannot create {}: {}", link_dir.string(), ec.message()));
  if (group_write_) {
    add_group_write(root_);
    add_group_write(revisions_);
    add_group_write(link_dir);
  }
  struct stat a {
  }, b{};
  if (::stat(root_.c_str(), &a) == 0 && ::stat(link_dir.c_str(), &b) == 0 && a.st_dev != b.st_dev) {
    spdlog::warn(
        "sync: the link {} is on another filesystem than {}; an app that mounts only one of them "
        "cannot follow it",
        link_, root_);
  }
  if (!copy_to_.empty()) fs::create_directories(copy_to_, ec);
  const std::string current = live();
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(revisions_, ec)) {
    names.push_back(entry.path().filename().string());
  }
  for (const std::string& name : names) {
    if (name.starts_with(kTmp)) {  // an interrupted write of an older version
      fs::remove_all(revisions_ + "/" + name, ec);
    } else if (name.starts_with('.') && name.ends_with(kComplete)) {
      const std::string id = name.substr(1, name.size() - 1 - kComplete.size());
      if (!fs::exists(revision_dir(id), ec)) fs::remove(revisions_ + "/" + name, ec);
    } else if (!name.starts_with('.') && name != current) {
      retired_.push_back({name, Clock::now()});
    }
  }
}

std::string Destination::live() const {
  std::error_code ec;
  const fs::path target = fs::read_symlink(link_, ec);
  if (ec) return {};
  return target.filename().string();
}

std::string Destination::revision_dir(const std::string& id) const { return revisions_ + "/" + id; }

std::string Destination::mark(const std::string& id) const {
  return revisions_ + "/." + id + std::string(kComplete);
}

std::string Destination::state_file(const std::string& name) const { return root_ + "/." + name; }

bool Destination::complete(const std::string& id) const {
  std::error_code ec;
  return !id.empty() && fs::is_directory(revision_dir(id), ec) && fs::exists(mark(id), ec);
}

void Destination::build(const std::string& id, const std::function<void(const std::string&)>& fill,
                        const Remove& remove) {
  if (complete(id)) return;
  const std::string dir = revision_dir(id);
  std::error_code ec;
  if (fs::exists(dir, ec)) remove(dir);
  try {
    fill(dir);
  } catch (...) {
    remove(dir);
    throw;
  }
  if (group_write_) {
    add_group_write(dir);
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      add_group_write(it->path());
    }
  }
  // Complete: marked, so that a later run does not take a half-built tree.
  std::ofstream(mark(id)).flush();
  if (!fs::exists(mark(id), ec)) throw SyncError(fmt::format("cannot write {}", mark(id)));
}

void Destination::switch_to(const std::string& id) {
  const std::string old = live();
  const fs::path target =
      fs::path(revision_dir(id)).lexically_relative(fs::path(link_).parent_path());
  switch_link(link_, target.string());
  // The new one is live: it must not be removed, even if it was retired before.
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                [&id](const Retired& r) { return r.id == id; }),
                 retired_.end());
  if (!old.empty() && old != id) retired_.push_back({old, Clock::now()});
  if (!copy_to_.empty()) copy_out(revision_dir(id));
}

void Destination::discard(const std::string& id, const Remove& remove) {
  std::error_code ec;
  fs::remove(mark(id), ec);
  if (fs::exists(revision_dir(id), ec)) remove(revision_dir(id));
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(),
                                [&id](const Retired& r) { return r.id == id; }),
                 retired_.end());
}

void Destination::copy_out(const std::string& from) {
  std::error_code ec;
  std::set<fs::path> wanted;
  for (auto it = fs::recursive_directory_iterator(from, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->path().filename() == ".git") {  // a worktree's pointer into the mirror
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
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

size_t Destination::cleanup(const Remove& remove) {
  const auto now = Clock::now();
  size_t removed = 0;
  std::error_code ec;
  for (auto it = retired_.begin(); it != retired_.end();) {
    if (now - it->since < keep_old_for_) {
      ++it;
      continue;
    }
    fs::remove(mark(it->id), ec);
    if (fs::exists(revision_dir(it->id), ec)) remove(revision_dir(it->id));
    ++removed;
    it = retired_.erase(it);
  }
  return removed;
}

}  // namespace sidecar::sync
