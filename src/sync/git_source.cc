#include "sync/git_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sync/git_text.h"
#include "sync/http_source.h"

namespace sidecar::sync {
namespace {

namespace fs = std::filesystem;

// What a git command must not take from sidecar's environment: another
// repository, another ssh command (GIT_SSH_COMMAND beats core.sshCommand),
// prompts, config meant for something else.
const std::vector<std::string> kUnset = {"GIT_DIR",
                                         "GIT_WORK_TREE",
                                         "GIT_INDEX_FILE",
                                         "GIT_OBJECT_DIRECTORY",
                                         "GIT_COMMON_DIR",
                                         "GIT_NAMESPACE",
                                         "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                                         "GIT_SSH",
                                         "GIT_SSH_COMMAND",
                                         "GIT_SSH_VARIANT",
                                         "GIT_ASKPASS",
                                         "SSH_ASKPASS",
                                         "GIT_CONFIG_PARAMETERS",
                                         "GIT_CONFIG",
                                         "GIT_PROXY_COMMAND",
                                         "GIT_HTTP_LOW_SPEED_LIMIT",
                                         "GIT_HTTP_LOW_SPEED_TIME"};

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw SyncError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  return line;
}

// Writes `content` to `path` (mode 0600) under a temporary name, renamed.
void write_private(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw SyncError(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
    const bool ok =
        ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
    ::close(fd);
    if (!ok) throw SyncError(fmt::format("cannot write {}", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw SyncError(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
}

bool is_http(const std::string& url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

bool contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

}  // namespace

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 3600000 == 0 && ms != 0) return fmt::format("{}h", ms / 3600000);
  if (ms % 60000 == 0 && ms != 0) return fmt::format("{}m", ms / 60000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

GitSource::GitSource(const SyncConfig& config, Reaper& reaper, Canceller& canceller)
    : config_(config),
      reaper_(reaper),
      canceller_(canceller),
      mirror_(config.root + "/.git-mirror"),
      url_(redact(config.git_repo)) {
  std::vector<std::pair<std::string, std::string>> settings;
  // A password in the repository URL goes to the credential store too, not
  // into the mirror's config (which the app can read).
  if (is_http(config.git_repo)) url_password_ = url_password(config.git_repo);
  remote_url_ = url_password_ ? without_password(config.git_repo) : config.git_repo;
  const bool has_credentials = url_password_ || !config.credentials_file.empty() ||
                               !config.credentials.empty() || !config.askpass_url.empty();
  if (has_credentials) {
    // Outside root: the app may read root, it must not read the secrets.
    const char* tmpdir = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmpdir != nullptr && *tmpdir != 0 ? tmpdir : "/tmp") + "/sidecar-sync-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      throw SyncError(fmt::format("cannot create a private directory for credentials ({}): {}",
                                  templ, std::strerror(errno)));
    }
    secrets_dir_ = templ;
    store_file_ = secrets_dir_ + "/credentials";
    settings.emplace_back("credential.helper", "");  // none of the user's helpers
    settings.emplace_back("credential.helper", "store --file=" + shell_quote(store_file_));
  }
  const auto timeout_s = std::chrono::duration_cast<std::chrono::seconds>(config.timeout).count();
  // A stalled HTTP transfer ends before the deadline, with curl's message.
  settings.emplace_back("http.lowSpeedLimit", "1");
  low_speed_time_ = std::clamp<int64_t>(timeout_s / 2, 1, 30);
  settings.emplace_back("http.lowSpeedTime", std::to_string(low_speed_time_));
  {
    std::string ssh = "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes";
    if (!config.known_hosts.empty()) {
      ssh += " -o UserKnownHostsFile=" + shell_quote(config.known_hosts) +
             " -o GlobalKnownHostsFile=/dev/null";
    }
    if (!config.ssh_key.empty()) {
      ssh += " -o IdentitiesOnly=yes -i " + shell_quote(config.ssh_key);
    }
    const int64_t connect = std::clamp<int64_t>(timeout_s, 1, 30);
    ssh += fmt::format(" -o ConnectTimeout={} -o ServerAliveInterval={} -o ServerAliveCountMax=2",
                       connect, connect);
    settings.emplace_back("core.sshCommand", ssh);
  }
  if (!config.http_proxy.empty()) settings.emplace_back("http.proxy", config.http_proxy);
  if (!config.cookie_file.empty()) settings.emplace_back("http.cookieFile", config.cookie_file);
  // git runs nothing in the background: a detached gc would outlive its
  // deadline and race the next fetch.
  settings.emplace_back("gc.autoDetach", "false");
  // git_gc: auto repacks when a few hundred loose objects or 8 packs have
  // piled up (git's own thresholds, 6700 and 50, let 100 force-pushed syncs
  // of a small tree keep 25 MiB of garbage). git_config may change them.
  settings.emplace_back("gc.auto", "256");
  settings.emplace_back("gc.autoPackLimit", "8");
  settings.emplace_back("maintenance.auto", "false");
  settings.emplace_back("advice.detachedHead", "false");
  for (const auto& kv : config.git_config) settings.push_back(kv);

  env_ = {{"GIT_TERMINAL_PROMPT", "0"},
          {"GCM_INTERACTIVE", "never"},
          {"LC_ALL", "C"},
          {"LANGUAGE", "C"},
          {"GIT_CONFIG_COUNT", std::to_string(settings.size())}};
  for (size_t i = 0; i < settings.size(); ++i) {
    env_.emplace_back(fmt::format("GIT_CONFIG_KEY_{}", i), settings[i].first);
    env_.emplace_back(fmt::format("GIT_CONFIG_VALUE_{}", i), settings[i].second);
  }
}

GitSource::~GitSource() {
  if (!secrets_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(secrets_dir_, ec);
  }
}

ChildResult GitSource::git(const Run& run, bool check) {
  Command c;
  c.argv.reserve(run.args.size() + 1);
  c.argv.push_back("git");
  c.argv.insert(c.argv.end(), run.args.begin(), run.args.end());
  c.cwd = run.cwd.empty() ? mirror_ : run.cwd;
  c.env = env_;
  c.unset = kUnset;
  c.deadline = deadline_;
  c.input = run.input;
  ChildResult r = run_child(c, reaper_, &canceller_);
  uint64_t peak = max_rss_.load(std::memory_order_relaxed);
  while (r.max_rss_bytes > peak &&
         !max_rss_.compare_exchange_weak(peak, r.max_rss_bytes, std::memory_order_relaxed)) {
  }
  spdlog::debug("sync {}: git {} -> {}{}{}", config_.name, run.args.empty() ? "" : run.args[0],
                r.describe(), r.err.empty() ? "" : ": ", redact(git_error_summary(r.err)));
  if (r.end == ChildResult::End::kTimedOut || r.end == ChildResult::End::kCancelled) {
    remove_stale_locks();
  }
  if (check && !r.ok()) fail(run, r);
  return r;
}

void GitSource::fail(const Run& run, const ChildResult& r) {
  switch (r.end) {
    case ChildResult::End::kTimedOut:
      throw SyncError(
          fmt::format("timed out after {} while {}", format_duration(config_.timeout), run.doing));
    case ChildResult::End::kCancelled:
      throw SyncError(fmt::format("stopped while {}", run.doing));
    case ChildResult::End::kNotStarted:
      throw SyncError(fmt::format("{}: {}", run.doing, r.err));
    default:
      break;
  }
  // A damaged mirror is made again at the next sync.
  for (std::string_view broken : {"not a git repository", "fatal: bad object", "is corrupt",
                                  "unable to read tree", "loose object"}) {
    if (contains(r.err, broken)) wipe_ = true;
  }
  const std::string summary = git_error_summary(r.err);
  const std::string detail = summary.empty() ? "git: " + r.describe() : summary;
  if (contains(r.err, "Authentication failed") || contains(r.err, "could not read Username") ||
      contains(r.err, "could not read Password") ||
      contains(r.err, "Permission denied (publickey")) {
    throw SyncError(fmt::format("authentication failed for {} ({})", url_, detail));
  }
  if (contains(r.err, "Operation too slow")) {  // http.lowSpeedTime
    throw SyncError(
        fmt::format("timed out after {}s without data while {}", low_speed_time_, run.doing));
  }
  if (contains(r.err, "Host key verification failed") ||
      contains(r.err, "REMOTE HOST IDENTIFICATION HAS CHANGED")) {
    throw SyncError(
        fmt::format("the host key of {} is not in {} ({})", url_, config_.known_hosts, detail));
  }
  for (std::string_view unreachable :
       {"unable to connect", "Connection refused", "Could not resolve", "Failed to connect",
        "Connection timed out", "No route to host", "Could not read from remote repository",
        "Connection reset", "Operation timed out", "unable to access", "Proxy CONNECT aborted",
        "Received HTTP code"}) {
    if (contains(r.err, unreachable)) {
      throw SyncError(fmt::format("cannot reach {} while {}: {}", url_, run.doing, detail));
    }
  }
  throw SyncError(fmt::format("{}: {}", run.doing, detail));
}

void GitSource::remove_stale_locks() {
  // A killed git leaves its lock files; nobody else writes this mirror.
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(mirror_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory() && it->path().filename() == "objects") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->path().extension() == ".lock") {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

void GitSource::prepare_mirror() {
  std::error_code ec;
  if (prepared_ && !wipe_ && fs::exists(mirror_ + "/HEAD", ec)) return;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!fs::exists(mirror_ + "/HEAD", ec) || attempt > 0 || wipe_) {
      if (wipe_)
        spdlog::warn("sync {}: the mirror {} is damaged; making a new one", config_.name, mirror_);
      wipe_ = false;
      fs::remove_all(mirror_, ec);
      fs::create_directories(mirror_, ec);
      if (ec) throw SyncError(fmt::format("cannot create {}: {}", mirror_, ec.message()));
      std::vector<std::string> args = {"init", "--bare", "-q"};
      if (config_.group_write) args.push_back("--shared=group");
      args.push_back(mirror_);
      git({args, config_.root, "creating the mirror repository"});
      target_.clear();
    }
    // The remote is "origin": relative submodule URLs resolve against it,
    // and a partial clone (filter) needs a named remote. No fetch refspec:
    // a fetch updates only the refs it is given.
    const ChildResult r =
        git({{"config", "remote.origin.url", remote_url_}, "", "configuring the mirror"}, false);
    if (r.end == ChildResult::End::kTimedOut || r.end == ChildResult::End::kCancelled) {
      fail({{}, "", "configuring the mirror"}, r);
    }
    if (r.ok()) {
      if (config_.group_write) {
        git({{"config", "core.sharedRepository", "group"}, "", "configuring the mirror"});
      }
      prepared_ = true;
      return;
    }
    spdlog::warn("sync {}: the mirror {} is unusable ({}); making a new one", config_.name, mirror_,
                 git_error_summary(r.err));
  }
  throw SyncError(fmt::format("cannot prepare the mirror {}", mirror_));
}

void GitSource::write_credentials() {
  if (store_file_.empty()) return;
  std::string lines;
  const std::string default_user =
      url_username(config_.git_repo).empty() ? "git" : url_username(config_.git_repo);
  auto add = [&](const std::string& url, const UserPassword& up) {
    const std::string line = credential_store_line(url, up);
    if (!line.empty()) lines += line + "\n";
  };
  if (url_password_) add(remote_url_, *url_password_);
  if (!config_.credentials_file.empty() && is_http(config_.git_repo)) {
    add(remote_url_,
        parse_credentials_line(read_first_line(config_.credentials_file), default_user));
  }
  if (!config_.askpass_url.empty()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    const HttpResponse answer =
        http_call("GET", config_.askpass_url, {},
                  std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(10000)),
                  nullptr, 64 * 1024);
    if (answer.status != 200) {
      throw SyncError(
          fmt::format("askpass_url {} answered {}", redact(config_.askpass_url), answer.status));
    }
    const auto up = parse_askpass(answer.body);
    if (!up) {
      throw SyncError(fmt::format("askpass_url {} gave no username= and password= lines",
                                  redact(config_.askpass_url)));
    }
    if (is_http(config_.git_repo)) add(remote_url_, *up);
  }
  for (const CredentialConfig& c : config_.credentials) {
    add(c.url, {c.username, read_first_line(c.password_file)});
  }
  write_private(store_file_, lines);
}

void GitSource::begin(Clock::time_point deadline) {
  deadline_ = deadline;
  prepare_mirror();
  write_credentials();
}

bool GitSource::has_commit(const std::string& id) {
  return git({{"cat-file", "-e", id + "^{commit}"}, "", "looking for " + id}, false).ok();
}

void GitSource::set_target(const std::string& id) {
  if (target_ == id) return;
  git({{"update-ref", "refs/sidecar/target", id}, "", "keeping " + id});
  target_ = id;
}

static std::vector<std::string> depth_args(const SyncConfig& c, const std::string& mirror) {
  std::vector<std::string> args;
  std::error_code ec;
  if (c.depth > 0) {
    args.push_back(fmt::format("--depth={}", c.depth));
  } else if (fs::exists(mirror + "/shallow", ec)) {
    args.push_back("--unshallow");
  }
  if (!c.filter.empty()) args.push_back("--filter=" + c.filter);
  return args;
}

std::string GitSource::fetch_commit(const std::string& id) {
  if (has_commit(id)) {
    set_target(id);
    return id;
  }
  const std::string doing = fmt::format("fetching from {} ({})", url_, id);
  std::vector<std::string> args = {"fetch",        "-q",
                                   "--no-tags",    "--no-write-fetch-head",
                                   "--no-auto-gc", "--no-recurse-submodules"};
  auto with_depth = depth_args(config_, mirror_);
  args.insert(args.end(), with_depth.begin(), with_depth.end());
  args.push_back("origin");
  args.push_back("+" + id + ":refs/sidecar/target");
  const ChildResult r = git({args, "", doing}, false);
  if (r.ok()) {
    target_ = id;
    return id;
  }
  if (r.end != ChildResult::End::kExited) fail({args, "", doing}, r);
  // A server that does not give commits by id (uploadpack.allowReachableSHA1InWant
  // off, protocol v0): the whole history of its branches and tags.
  spdlog::info("sync {}: {} cannot be fetched by id ({}); fetching every branch and tag",
               config_.name, id, git_error_summary(r.err));
  std::vector<std::string> all = {"fetch",        "-q",
                                  "--no-tags",    "--no-write-fetch-head",
                                  "--no-auto-gc", "--no-recurse-submodules"};
  std::error_code ec;
  if (fs::exists(mirror_ + "/shallow", ec)) all.push_back("--unshallow");
  if (!config_.filter.empty()) all.push_back("--filter=" + config_.filter);
  all.insert(all.end(), {"origin", "+refs/heads/*:refs/sidecar/all/heads/*",
                         "+refs/tags/*:refs/sidecar/all/tags/*"});
  git({all, "", doing});
  const bool found = has_commit(id);
  if (found) set_target(id);
  // Only the commit stays reachable; the rest goes at the next gc.
  const ChildResult refs =
      git({{"for-each-ref", "--format=delete %(refname)", "refs/sidecar/all/"}, "", doing}, false);
  if (refs.ok() && !refs.out.empty()) {
    git({{"update-ref", "--stdin"}, "", doing, refs.out}, false);
  }
  if (!found) throw SyncError(fmt::format("commit {} not found in {}", id, url_));
  return id;
}

std::string GitSource::fetch(const std::string& live) {
  const std::string& ref = config_.git_ref;
  if (is_commit_id(ref)) return fetch_commit(ref);

  std::vector<std::string> ls = {"ls-remote", "-q", "origin"};
  for (const std::string& p : ls_remote_patterns(ref)) ls.push_back(p);
  const ChildResult listed = git({ls, "", fmt::format("fetching from {} (listing refs)", url_)});
  const auto resolved = resolve_ref(parse_ls_remote(listed.out), ref);
  if (!resolved) {
    throw SyncError(
        fmt::format("ref '{}' not found in {} (a deleted branch, or a typo)", ref, url_));
  }
  if (resolved->commit == live) return live;
  if (has_commit(resolved->commit)) {
    set_target(resolved->commit);
    return resolved->commit;
  }
  const std::string doing = fmt::format("fetching from {} ({})", url_, ref);
  std::vector<std::string> args = {"fetch",        "-q",
                                   "--no-tags",    "--no-write-fetch-head",
                                   "--no-auto-gc", "--no-recurse-submodules"};
  auto with_depth = depth_args(config_, mirror_);
  args.insert(args.end(), with_depth.begin(), with_depth.end());
  args.push_back("origin");
  args.push_back("+" + resolved->name + ":refs/sidecar/target");
  git({args, "", doing});
  // What arrived (a push may have come between the listing and the fetch).
  const ChildResult got =
      git({{"rev-parse", "--verify", "-q", "refs/sidecar/target^{commit}"}, "", doing});
  std::string commit = got.out.substr(0, got.out.find('\n'));
  if (!is_commit_id(commit)) throw SyncError(fmt::format("{}: no commit arrived", doing));
  target_.clear();  // refs/sidecar/target may be a tag object
  return commit;
}

void GitSource::checkout(const std::string& commit, const std::string& dir) {
  const std::string doing = fmt::format("checking out {}", commit);
  git({{"worktree", "add", "-q", "--force", "--detach", "--no-checkout", dir, commit}, "", doing});
  // The worktree's .git names its record in the mirror by absolute path;
  // relative, it also works where the volume is mounted elsewhere.
  std::error_code ec;
  const std::string dotgit = dir + "/.git";
  std::string line;
  {
    std::ifstream in(dotgit);
    std::getline(in, line);
  }
  if (line.starts_with("gitdir: ")) {
    const fs::path admin = line.substr(8);
    const fs::path rel = admin.lexically_relative(fs::path(dir));
    if (!rel.empty()) {
      std::ofstream out(dotgit, std::ios::trunc);
      out << "gitdir: " << rel.string() << "\n";
    }
  }
  if (!config_.sparse_checkout.empty()) {
    std::vector<std::string> args = {"sparse-checkout", "set", "--no-cone", "--"};
    args.insert(args.end(), config_.sparse_checkout.begin(), config_.sparse_checkout.end());
    git({args, dir, "setting sparse_checkout"});
  }
  git({{"reset", "-q", "--hard", commit}, dir, doing});
  if (config_.submodules != Submodules::kOff && fs::exists(dir + "/.gitmodules", ec)) {
    std::vector<std::string> args = {"submodule", "update", "-q", "--init"};
    if (config_.submodules == Submodules::kRecursive) args.push_back("--recursive");
    if (config_.depth > 0) args.push_back(fmt::format("--depth={}", config_.depth));
    git({args, dir, fmt::format("updating the submodules of {}", commit)});
  }
}

bool GitSource::verify(const std::string& commit, const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir + "/.git", ec)) return false;
  const ChildResult r = git({{"rev-parse", "HEAD"}, dir, "checking the live tree"}, false);
  if (r.end == ChildResult::End::kTimedOut || r.end == ChildResult::End::kCancelled) {
    fail({{}, dir, "checking the live tree"}, r);
  }
  return r.ok() && r.out.substr(0, r.out.find('\n')) == commit;
}

void GitSource::remove(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("sync {}: cannot remove {}: {}", config_.name, dir, ec.message());
  prune_ = true;
}

void GitSource::maintain(bool fetched) {
  if (!fetched && !prune_) return;
  if (!prepared_) return;
  deadline_ = Clock::now() + config_.timeout;
  try {
    if (prune_) {
      git({{"worktree", "prune"}, "", "pruning worktrees"});
      prune_ = false;
    }
    if (config_.git_gc == GitGc::kOff) return;
    // Nobody else writes this mirror and commands run one at a time, so
    // unreachable objects (old revisions, force-pushed commits) can go now.
    std::vector<std::string> args = {
        "-c", "gc.pruneExpire=now", "-c", "gc.worktreePruneExpire=now", "gc", "--quiet"};
    if (config_.git_gc == GitGc::kAuto) args.push_back("--auto");
    if (config_.git_gc == GitGc::kAggressive) args.push_back("--aggressive");
    git({args, "", "running git gc"});
  } catch (const SyncError& e) {
    spdlog::warn("sync {}: {}", config_.name, e.what());
  }
}

}  // namespace sidecar::sync
