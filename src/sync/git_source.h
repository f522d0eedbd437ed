// A git repository as a sync source, through the git command line (as
// git-sync does; docs/sync.md "How a git sync works").
//
// Layout in root: a bare mirror (.git-mirror) that holds the objects, and
// one git worktree of it per revision (.revisions/<commit>), each with a
// `.git` file that points into the mirror (relative, so the tree still works
// where the volume is mounted elsewhere).
//
// Every git command is a child process (child_process.h) with the sync's
// deadline, killed with its whole process group when it passes; its stderr
// makes the error message. Secrets never go on a command line: credentials
// are written to a git-credential-store file in a private directory
// (0700, outside root) that `credential.helper` names, and every setting
// (credential.helper, core.sshCommand with StrictHostKeyChecking=yes and the
// configured known_hosts, http.lowSpeedLimit/Time, http.proxy,
// http.cookieFile, git_config) reaches git through GIT_CONFIG_COUNT/KEY/VALUE
// in its environment, which its own children (submodules) inherit.
//
// Thread safety: one GitSource per sync thread; max_rss_bytes() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sync/child_process.h"
#include "sync/config.h"
#include "sync/git_text.h"

namespace sidecar::sync {

// A sync failure with a message for the log, /sync and the error file.
class SyncError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "2s", "250ms", "2m": a duration as a config would say it.
std::string format_duration(std::chrono::milliseconds d);

class GitSource {
 public:
  using Clock = std::chrono::steady_clock;

  // The mirror is config.root + "/.git-mirror" (created when missing or
  // unusable). Children are reaped through `reaper`; `canceller` kills the
  // git command running (Module::stop).
  GitSource(const SyncConfig& config, Reaper& reaper, Canceller& canceller);
  ~GitSource();  // removes the private credentials directory
  GitSource(const GitSource&) = delete;
  GitSource& operator=(const GitSource&) = delete;

  // Starts a sync whose git commands end by `deadline`: prepares the mirror
  // and writes the credentials (files read again, askpass_url asked).
  // Throws SyncError.
  void begin(Clock::time_point deadline);
  // The commit the configured ref points to on the remote, fetched into the
  // mirror (shallow to `depth`, with `filter`). A commit id is fetched by
  // itself and, when the server refuses that, with the whole history of
  // its branches and tags. `live` is the live revision: when the remote
  // still points there, nothing is fetched. Throws SyncError (a ref the
  // remote does not have is one).
  std::string fetch(const std::string& live);
  // Builds revision `commit` in `dir` (which must not exist): a worktree,
  // sparse_checkout applied, submodules updated. Throws SyncError.
  void checkout(const std::string& commit, const std::string& dir);
  // Whether `dir` is a worktree at `commit`. Throws SyncError on a timeout.
  bool verify(const std::string& commit, const std::string& dir);
  // Removes the tree of a revision; git forgets it at the next maintain().
  void remove(const std::string& dir);
  // After a sync that fetched or removed something: `git worktree prune`
  // and `git gc` as git_gc says, with a deadline of its own (`timeout`).
  // Problems are logged, not thrown.
  void maintain(bool fetched);
  // The peak resident memory of any git command so far (bytes).
  uint64_t max_rss_bytes() const { return max_rss_.load(std::memory_order_relaxed); }

 private:
  struct Run {
    std::vector<std::string> args;
    std::string cwd;
    std::string doing;       // "fetching from URL" for the error message
    std::string input = {};  // for its stdin
  };
  ChildResult git(const Run& run, bool check = true);
  void prepare_mirror();
  bool has_commit(const std::string& id);
  void set_target(const std::string& id);
  std::string fetch_commit(const std::string& id);
  void write_credentials();
  void remove_stale_locks();
  [[noreturn]] void fail(const Run& run, const ChildResult& r);

  const SyncConfig& config_;
  Reaper& reaper_;
  Canceller& canceller_;
  const std::string mirror_;
  const std::string url_;   // redacted, for messages
  std::string remote_url_;  // the URL without a password (the mirror's origin)
  std::optional<UserPassword> url_password_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::string secrets_dir_;  // private, for the credential store; "" until needed
  std::string store_file_;
  Clock::time_point deadline_{};
  bool prepared_ = false;
  bool prune_ = false;
  bool wipe_ = false;            // the mirror is damaged: make it again
  int64_t low_speed_time_ = 30;  // seconds (http.lowSpeedTime)
  std::string target_;           // what refs/sidecar/target points to, "" unknown
  std::atomic<uint64_t> max_rss_{0};
};

}  // namespace sidecar::sync
