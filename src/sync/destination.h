// Where a sync puts its revisions, and the atomic switch between them.
//
// Every revision is a complete directory, root/.revisions/<id>, built in
// place and then marked complete (root/.revisions/.<id>.complete); a tree
// without its mark (an interrupted build) is removed and built again. The
// link (`link`: absolute, or relative to root, in any directory) is a
// symlink to the revision, by a path relative to the link's directory; it
// is switched by creating a new symlink under a temporary name and renaming
// it over the old one, so a reader that resolves the link once sees one
// whole revision, never a mix or a half-written tree. Old revisions are
// removed keep_old_for after the switch, so a reader still in one is not
// broken. With copy_to, the files are also copied into a plain folder, each
// replaced atomically (rename), for apps that cannot follow symlinks.
//
// Thread safety: one Destination per sync thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "sync/config.h"

namespace sidecar::sync {

class Destination {
 public:
  using Clock = std::chrono::steady_clock;
  using Remove = std::function<void(const std::string& dir)>;

  // Creates root, root/.revisions and the link's directory when missing.
  // Revisions other than the live one (left by an earlier run) are retired
  // (removed keep_old_for from now). Throws SyncError.
  explicit Destination(const SyncConfig& config);

  // The id of the revision the link points to, or "" when there is none.
  std::string live() const;
  // Whether revision `id` is on disk and complete.
  bool complete(const std::string& id) const;
  // Builds revision `id` with `fill(dir)` (dir does not exist; fill
  // creates it) unless it is complete; a leftover of an interrupted build
  // goes first, through `remove`. Throws SyncError; on error the live
  // revision stays.
  void build(const std::string& id, const std::function<void(const std::string& dir)>& fill,
             const Remove& remove);
  // Points the link at revision `id` (built), retires the one it left, and
  // updates copy_to. Throws SyncError.
  void switch_to(const std::string& id);
  // Forgets revision `id` at once (its mark, then its tree).
  void discard(const std::string& id, const Remove& remove);
  // The directory of revision `id`.
  std::string revision_dir(const std::string& id) const;
  // Removes retired revisions older than keep_old_for, through `remove`;
  // returns how many.
  size_t cleanup(const Remove& remove);
  // A small file in root for sidecar's state (".sidecar-notified").
  std::string state_file(const std::string& name) const;

 private:
  void copy_out(const std::string& from);
  std::string mark(const std::string& id) const;

  const std::string root_;
  const std::string revisions_;
  const std::string link_;
  const std::string copy_to_;
  const std::chrono::milliseconds keep_old_for_;
  const bool group_write_;
  struct Retired {
    std::string id;
    Clock::time_point since;
  };
  std::vector<Retired> retired_;
};

}  // namespace sidecar::sync
