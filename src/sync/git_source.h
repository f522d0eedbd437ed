// A git repository as a sync source, through libgit2.
//
// The repository is mirrored in a bare repository (root/.git-mirror); each
// sync asks the remote which commit the wanted ref points to (one round trip)
// and fetches only when that commit is not there yet. A ref the remote no
// longer advertises is an error, so a deleted branch never passes for an
// unchanged one. Host keys of ssh remotes are checked against known_hosts;
// https certificates by the library's verification.
//
// Debian 12's libgit2 (1.5) has no shallow fetch (it arrived in 1.7): the
// first sync fetches the history of the wanted ref, later syncs only what is
// new.
//
// Thread safety: one GitSource per sync thread.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

struct git_repository;

namespace sidecar::sync {

// A sync failure with a message for the log and /sync.
class SyncError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GitRequest {
  std::string url;
  std::string ref;               // branch, tag, 40-hex commit, or HEAD
  std::string credentials_file;  // "user:password" or a token; read now
  std::string ssh_key;
  std::string known_hosts;
  std::chrono::steady_clock::time_point deadline;
};

class GitSource {
 public:
  // `mirror` is the bare repository's directory (created when missing).
  explicit GitSource(std::string mirror);
  ~GitSource();
  GitSource(const GitSource&) = delete;
  GitSource& operator=(const GitSource&) = delete;

  // The commit (40 hex) `request.ref` points to on the remote, fetched into
  // the mirror. Throws SyncError.
  std::string fetch(const GitRequest& request);
  // Writes the tree of `commit` (files, executables, symlinks; submodules
  // are skipped) into the directory `dir`, which must exist and be empty.
  // Throws SyncError.
  void checkout(const std::string& commit, const std::string& dir);

 private:
  void open();
  std::string mirror_;
  git_repository* repo_ = nullptr;
};

}  // namespace sidecar::sync
