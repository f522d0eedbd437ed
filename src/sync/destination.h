// Where a sync puts its revisions, and the atomic switch between them.
//
// Every revision is a complete directory, root/.revisions/<id>, written under
// a temporary name and renamed into place when complete. The link
// (root/<link>, a symlink to ".revisions/<id>") is switched by creating a new
// symlink under a temporary name and renaming it over the old one, so a
// reader that resolves the link once sees one whole revision, never a mix or
// a half-written tree. Old revisions are removed keep_old_for after the
// switch, so a reader still in one is not broken. With copy_to, the files
// are also copied into a plain folder, each replaced atomically (rename),
// for apps that cannot follow symlinks.
//
// Thread safety: one Destination per sync thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sidecar::sync {

class Destination {
 public:
  using Clock = std::chrono::steady_clock;

  // Creates root and root/.revisions when missing. Revisions other than the
  // live one (left by an earlier run) are scheduled for removal.
  Destination(std::string root, std::string link, std::string copy_to,
              std::chrono::milliseconds keep_old_for);

  // The id of the live revision, or "" when there is none.
  std::string live() const;
  // Writes revision `id` with `fill(dir)` (skipped when it already exists),
  // switches the link to it, and updates copy_to. Throws SyncError; on error
  // the live revision stays.
  void publish(const std::string& id, const std::function<void(const std::string& dir)>& fill);
  // The directory of revision `id`.
  std::string revision_dir(const std::string& id) const;
  // Removes retired revisions older than keep_old_for, and leftovers of
  // interrupted writes.
  void cleanup();
  // A small file in root: where a sync remembers the last revision its
  // hooks were told about.
  std::string state_file(const std::string& name) const;

 private:
  void copy_out(const std::string& from);

  const std::string root_;
  const std::string revisions_;
  const std::string link_;
  const std::string copy_to_;
  const std::chrono::milliseconds keep_old_for_;
  struct Retired {
    std::string id;
    Clock::time_point since;
  };
  std::vector<Retired> retired_;
};

}  // namespace sidecar::sync
