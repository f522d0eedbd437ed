// The `sync:` section: a list of folders kept in step with a git repository
// or an HTTP(S) file (docs/config.md "sync"). Parsed in the binary (this
// file is linked in; it needs only yaml-cpp); the work is done by
// libsidecar-sync.so, loaded when a config has the section.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/reader.h"

namespace sidecar::sync {

using config::Duration;
using namespace std::chrono_literals;

// A hook run after a new revision of a sync is live.
struct HookConfig {
  enum class Kind { kSignal, kWebhook, kExec } kind = Kind::kSignal;
  int signal = 0;   // kSignal: sent to the supervised app's process group
  std::string url;  // kWebhook: http:// or https://
  std::string method = "POST";
  int status = 0;                                   // the expected status; 0: any 2xx
  std::string revision_header = "X-Sync-Revision";  // carries the revision
  std::vector<std::string> command;                 // kExec: argv, run in the new revision
  Duration timeout = 10s;
  uint32_t retries = 3;  // after the first attempt, with backoff
  bool operator==(const HookConfig&) const = default;
};

// One sync entry.
struct SyncConfig {
  std::string name;
  // git source
  std::string git_repo;          // https://, ssh://, git://, file:// or a path
  std::string git_ref = "HEAD";  // branch, tag, or commit; HEAD: the remote's default branch
  std::string credentials_file;  // "user:password" (or a token), read again at every sync
  std::string ssh_key;           // private key file for ssh://
  std::string known_hosts;       // OpenSSH known_hosts for ssh://; required for ssh
  // http source
  std::string http_url;
  std::string http_file;  // the name to store a non-archive download as (default: from the URL)
  // destination
  std::string root;
  std::string link = "current";  // relative to root
  std::string copy_to;           // optional plain folder, per-file atomic replace
  Duration period = 10s;
  Duration timeout = 2min;          // one sync, all attempts of its transfers
  Duration keep_old_for = 30s;      // old revisions stay this long after the switch
  uint32_t max_failures = 0;        // consecutive failures before /ready is 503; 0: never
  bool wait_for_first_sync = true;  // /ready is 503 until the first success
  bool once = false;                // sync once; with no listeners and no app, then exit
  std::vector<HookConfig> hooks;
  bool operator==(const SyncConfig&) const = default;
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
