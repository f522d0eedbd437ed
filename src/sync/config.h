// The `sync:` section: a list of folders kept in step with a git repository
// or an HTTP(S) file (docs/config.md "sync", docs/sync.md). Parsed in the
// binary (this file is linked in; it needs only yaml-cpp); the work is done
// by libsidecar-sync.so, loaded when a config has the section.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/reader.h"

namespace sidecar::sync {

using config::Duration;
using namespace std::chrono_literals;

// A hook run after a new revision of a sync is live (docs/sync.md "Hooks").
struct HookConfig {
  static constexpr uint32_t kForever = std::numeric_limits<uint32_t>::max();
  enum class Kind { kSignal, kWebhook, kExec } kind = Kind::kSignal;
  int signal = 0;   // kSignal: sent to the supervised app's process group
  std::string url;  // kWebhook: http:// or https://
  std::string method = "POST";
  // The expected status: -1 any 2xx; 0 not checked (git-sync's
  // fire-and-forget: any answer will do).
  int status = -1;
  std::string revision_header = "X-Sync-Revision";  // carries the revision
  std::vector<std::string> command;                 // kExec: argv, run in the new revision
  Duration timeout = 10s;                           // one attempt
  // Retries after a failed attempt; kForever: until it succeeds or a newer
  // revision replaces it. In `once` mode the default is 0.
  uint32_t retries = kForever;
  bool retries_set = false;
  Duration max_interval = 30s;  // the longest wait between two attempts
  bool operator==(const HookConfig&) const = default;
};

// A username and password for the git URLs that start with `url` (by
// scheme and host; see docs/sync.md "Credentials").
struct CredentialConfig {
  std::string url;
  std::string username;
  std::string password_file;  // read again at every sync
  bool operator==(const CredentialConfig&) const = default;
};

enum class Submodules { kRecursive, kShallow, kOff };
enum class GitGc { kAuto, kAlways, kAggressive, kOff };

// One sync entry.
struct SyncConfig {
  std::string name;
  // git source
  std::string git_repo;          // https://, http://, ssh://, git://, file:// or user@host:path
  std::string git_ref = "HEAD";  // branch, tag, or commit; HEAD: the remote's default branch
  uint32_t depth = 1;            // commits of history fetched; 0: all
  Submodules submodules = Submodules::kRecursive;
  std::vector<std::string> sparse_checkout;  // patterns (git's non-cone sparse-checkout file)
  std::string filter;                        // partial clone filter ("blob:none")
  GitGc git_gc = GitGc::kAuto;
  std::vector<std::pair<std::string, std::string>> git_config;  // extra `git -c` entries, in order
  std::string credentials_file;  // "user:password" (or a token), read again at every sync
  std::vector<CredentialConfig> credentials;
  std::string askpass_url;  // GET at every sync: "username=...\npassword=..." lines
  std::string cookie_file;  // git's http.cookieFile
  std::string ssh_key;      // private key file for ssh
  std::string known_hosts;  // OpenSSH known_hosts for ssh; required for ssh
  // http source
  std::string http_url;
  std::string http_file;  // the name to store a non-archive download as (default: from the URL)
  // both
  std::string http_proxy;  // proxy for the source (http.proxy / CURLOPT_PROXY); "": environment
  // destination
  std::string root;
  std::string link = "current";  // the symlink the app reads: absolute, or relative to root
  std::string copy_to;           // optional plain folder, per-file atomic replace
  std::string touch_file;        // touched after each new revision (absolute after parsing)
  std::string error_file;        // holds the last error; removed on success (absolute)
  bool group_write = false;      // everything written is group-writable
  Duration period = 10s;
  Duration timeout = 2min;               // one sync, every git command in it
  Duration keep_old_for = 30s;           // old revisions stay this long after the switch
  uint32_t max_failures = 0;             // consecutive failures before /ready is 503; 0: never
  bool wait_for_first_sync = true;       // /ready is 503 until the first success
  bool once = false;                     // sync once; with no listeners and no app, then exit
  std::vector<std::string> pre_publish;  // a command that must pass before a revision goes live
  Duration pre_publish_timeout = 30s;
  std::vector<HookConfig> hooks;
  bool operator==(const SyncConfig&) const = default;

  // The link's absolute path.
  std::string link_path() const { return link.starts_with('/') ? link : root + "/" + link; }
};

// The typed section (what `parse` returns).
struct Section {
  std::vector<SyncConfig> syncs;
};

// The section's parser (config::Parser).
std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

// Registers the module kind "sync" (module/module.h).
void register_module();

}  // namespace sidecar::sync
