#include "sync/config.h"

#include <fmt/format.h>

#include "module/module.h"

namespace sidecar::sync {
namespace {

bool is_http_url(const std::string& s) {
  return s.starts_with("http://") || s.starts_with("https://");
}

// A path relative to root that stays inside it and does not touch
// sidecar's own state (names starting with '.': .revisions, .git-mirror).
bool plain_relative(const std::string& p) {
  if (p.empty() || p[0] == '/' || p[0] == '.' || p.back() == '/') return false;
  size_t i = 0;
  while (i <= p.size()) {
    size_t slash = p.find('/', i);
    if (slash == std::string::npos) slash = p.size();
    const std::string_view part = std::string_view(p).substr(i, slash - i);
    if (part.empty() || part == "." || part == "..") return false;
    i = slash + 1;
  }
  return true;
}

void load_hook(config::Reader& r, const YAML::Node& n, const std::string& where, HookConfig& h) {
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"signal", "webhook", "exec", "method", "status", "revision_header", "timeout",
                "retries", "max_interval"});
  int kinds = 0;
  if (auto v = n["signal"]) {
    ++kinds;
    h.kind = HookConfig::Kind::kSignal;
    r.get_signal(v, where + ".signal", h.signal);
  }
  if (auto v = n["webhook"]) {
    ++kinds;
    h.kind = HookConfig::Kind::kWebhook;
    if (r.get_string(v, where + ".webhook", h.url) && !is_http_url(h.url)) {
      r.error(v, where + ".webhook must be an http:// or https:// URL");
    }
  }
  if (auto v = n["exec"]) {
    ++kinds;
    h.kind = HookConfig::Kind::kExec;
    if (r.is_seq(v, where + ".exec")) {
      r.get_strings(v, where + ".exec", h.command);
      if (h.command.empty()) r.error(v, where + ".exec must not be empty");
    }
  }
  if (kinds != 1) r.error(n, where + " takes one of signal, webhook or exec");
  if (auto v = n["method"]) r.get_string(v, where + ".method", h.method);
  if (auto v = n["status"]) {
    uint32_t st = 0;
    if (r.get_count(v, where + ".status", st, 0, 599)) {
      if (st != 0 && st < 100) r.error(v, where + ".status must be 0 (not checked) or 100-599");
      h.status = static_cast<int>(st);
    }
  }
  if (auto v = n["revision_header"]) r.get_string(v, where + ".revision_header", h.revision_header);
  if (auto v = n["timeout"]) r.get_duration(v, where + ".timeout", h.timeout);
  if (auto v = n["retries"]) {
    if (r.get_count(v, where + ".retries", h.retries, 0, 1000000)) h.retries_set = true;
  }
  if (auto v = n["max_interval"]) {
    if (r.get_duration(v, where + ".max_interval", h.max_interval) && h.max_interval.count() == 0) {
      r.error(v, where + ".max_interval must be more than 0");
    }
  }
}

void load_git(config::Reader& r, const YAML::Node& g, const std::string& gw, SyncConfig& s) {
  if (!r.is_map(g, gw)) return;
  r.check_keys(
      g, gw,
      {"repo", "ref", "depth", "submodules", "sparse_checkout", "filter", "git_gc", "git_config",
       "credentials_file", "credentials", "askpass_url", "cookie_file", "ssh_key", "known_hosts"});
  if (auto v = g["repo"]) {
    if (r.get_string(v, gw + ".repo", s.git_repo) && s.git_repo.empty()) {
      r.error(v, gw + ".repo must not be empty");
    }
  } else {
    r.error(g, gw + " needs a repo");
  }
  if (auto v = g["ref"]) {
    if (r.get_string(v, gw + ".ref", s.git_ref) &&
        (s.git_ref.empty() || s.git_ref[0] == '-' ||
         s.git_ref.find_first_of(" \t\n:^~?*[\\") != std::string::npos)) {
      r.error(v, gw + ".ref must be a branch, a tag, a commit id or HEAD");
    }
  }
  if (auto v = g["depth"]) r.get_count(v, gw + ".depth", s.depth, 0, 1000000000);
  if (auto v = g["submodules"]) {
    std::string m;
    if (r.get_enum(v, gw + ".submodules", m, {"recursive", "shallow", "off"})) {
      s.submodules = m == "recursive" ? Submodules::kRecursive
                     : m == "shallow" ? Submodules::kShallow
                                      : Submodules::kOff;
    }
  }
  if (auto v = g["sparse_checkout"]) {
    if (r.get_strings(v, gw + ".sparse_checkout", s.sparse_checkout)) {
      for (const std::string& p : s.sparse_checkout) {
        if (p.empty() || p.find('\n') != std::string::npos) {
          r.error(v, gw + ".sparse_checkout patterns must be single non-empty lines");
        }
      }
    }
  }
  if (auto v = g["filter"]) {
    if (r.get_string(v, gw + ".filter", s.filter) &&
        (s.filter.empty() || s.filter[0] == '-' ||
         s.filter.find_first_of(" \t\n") != std::string::npos)) {
      r.error(v, gw + ".filter must be a git filter spec such as blob:none");
    }
  }
  if (auto v = g["git_gc"]) {
    std::string m;
    if (r.get_enum(v, gw + ".git_gc", m, {"auto", "always", "aggressive", "off"})) {
      s.git_gc = m == "auto"         ? GitGc::kAuto
                 : m == "always"     ? GitGc::kAlways
                 : m == "aggressive" ? GitGc::kAggressive
                                     : GitGc::kOff;
    }
  }
  if (auto v = g["git_config"]) {
    if (r.is_map(v, gw + ".git_config")) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::string key, value;
        if (!r.get_string(it->first, gw + ".git_config key", key) ||
            !r.get_string(it->second, fmt::format("{}.git_config.{}", gw, key), value)) {
          continue;
        }
        const size_t dot = key.find('.');
        if (dot == std::string::npos || dot == 0 || key.back() == '.' ||
            key.find_first_of("\n=") != std::string::npos) {
          r.error(it->first, fmt::format("{}.git_config: '{}' is not a git config key "
                                         "(section.name)",
                                         gw, key));
          continue;
        }
        s.git_config.emplace_back(key, value);
      }
    }
  }
  if (auto v = g["credentials_file"]) r.get_string(v, gw + ".credentials_file", s.credentials_file);
  if (auto v = g["credentials"]) {
    if (r.is_seq(v, gw + ".credentials")) {
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string cw = fmt::format("{}.credentials[{}]", gw, i);
        const YAML::Node c = v[i];
        if (!r.is_map(c, cw)) continue;
        r.check_keys(c, cw, {"url", "username", "password_file"});
        CredentialConfig cred;
        for (auto [key, out] : {std::pair<const char*, std::string*>{"url", &cred.url},
                                {"username", &cred.username},
                                {"password_file", &cred.password_file}}) {
          if (auto f = c[key]) {
            r.get_string(f, cw + "." + key, *out);
          } else {
            r.error(c, fmt::format("{} needs a {}", cw, key));
          }
        }
        if (!cred.url.empty() && !is_http_url(cred.url)) {
          r.error(c["url"], cw + ".url must be an http:// or https:// URL");
        }
        s.credentials.push_back(std::move(cred));
      }
    }
  }
  if (auto v = g["askpass_url"]) {
    if (r.get_string(v, gw + ".askpass_url", s.askpass_url) && !is_http_url(s.askpass_url)) {
      r.error(v, gw + ".askpass_url must be an http:// or https:// URL");
    }
  }
  if (auto v = g["cookie_file"]) r.get_string(v, gw + ".cookie_file", s.cookie_file);
  if (auto v = g["ssh_key"]) r.get_string(v, gw + ".ssh_key", s.ssh_key);
  if (auto v = g["known_hosts"]) r.get_string(v, gw + ".known_hosts", s.known_hosts);
  const bool ssh =
      s.git_repo.starts_with("ssh://") || s.git_repo.starts_with("git+ssh://") ||
      (s.git_repo.find("://") == std::string::npos && s.git_repo.find(':') != std::string::npos &&
       s.git_repo.find(':') < s.git_repo.find('/'));
  if (ssh && s.known_hosts.empty()) {
    r.error(g, gw + ": ssh needs known_hosts (host keys are always checked)");
  }
}

void load_sync(config::Reader& r, const YAML::Node& n, size_t index, Section& c) {
  const std::string where = fmt::format("sync[{}]", index);
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"name", "git", "http", "http_proxy", "root", "link", "copy_to", "touch_file",
                "error_file", "group_write", "period", "timeout", "keep_old_for", "max_failures",
                "wait_for_first_sync", "once", "pre_publish", "notify"});
  SyncConfig s;
  if (auto v = n["name"]) {
    r.get_string(v, where + ".name", s.name);
    for (const SyncConfig& other : c.syncs) {
      if (other.name == s.name) r.error(v, fmt::format("sync '{}' is defined twice", s.name));
    }
  } else {
    r.error(n, where + " needs a name");
  }
  if (auto g = n["git"]) load_git(r, g, where + ".git", s);
  if (auto h = n["http"]) {
    const std::string hw = where + ".http";
    if (r.is_map(h, hw)) {
      r.check_keys(h, hw, {"url", "file"});
      if (auto v = h["url"]) {
        if (r.get_string(v, hw + ".url", s.http_url) && !is_http_url(s.http_url)) {
          r.error(v, hw + ".url must be an http:// or https:// URL");
        }
      } else {
        r.error(h, hw + " needs a url");
      }
      if (auto v = h["file"]) r.get_string(v, hw + ".file", s.http_file);
    }
  }
  if (s.git_repo.empty() == s.http_url.empty()) r.error(n, where + " takes one of git or http");
  if (auto v = n["http_proxy"]) {
    if (r.get_string(v, where + ".http_proxy", s.http_proxy) &&
        s.http_proxy.find("://") == std::string::npos) {
      r.error(v, where + ".http_proxy must be a URL such as http://proxy:3128");
    }
  }
  if (auto v = n["root"]) {
    if (r.get_string(v, where + ".root", s.root)) {
      if (s.root.empty() || s.root[0] != '/') {
        r.error(v, where + ".root must be an absolute path");
      }
      while (s.root.size() > 1 && s.root.back() == '/') s.root.pop_back();
    }
  } else {
    r.error(n, where + " needs a root");
  }
  if (auto v = n["link"]) {
    if (r.get_string(v, where + ".link", s.link) && !s.link.starts_with('/') &&
        !plain_relative(s.link)) {
      r.error(v, where +
                     ".link must be an absolute path, or a path inside root without '..' whose "
                     "first name does not start with '.'");
    }
  }
  if (!s.root.empty() && s.link.starts_with('/') &&
      (s.link == s.root || s.link.starts_with(s.root + "/."))) {
    r.error(n["link"], where + ".link must not be root or inside sidecar's state in root");
  }
  if (auto v = n["copy_to"]) r.get_string(v, where + ".copy_to", s.copy_to);
  for (auto [key, out] : {std::pair<const char*, std::string*>{"touch_file", &s.touch_file},
                          {"error_file", &s.error_file}}) {
    if (auto v = n[key]) {
      if (r.get_string(v, where + "." + key, *out)) {
        if (out->empty() || out->back() == '/') {
          r.error(v, fmt::format("{}.{} must name a file", where, key));
        } else if (!out->starts_with('/')) {
          *out = s.root + "/" + *out;
        }
      }
    }
  }
  if (auto v = n["group_write"]) r.get_bool(v, where + ".group_write", s.group_write);
  if (auto v = n["period"]) {
    if (r.get_duration(v, where + ".period", s.period) && s.period.count() == 0) {
      r.error(v, where + ".period must be more than 0");
    }
  }
  if (auto v = n["timeout"]) {
    if (r.get_duration(v, where + ".timeout", s.timeout) && s.timeout.count() == 0) {
      r.error(v, where + ".timeout must be more than 0");
    }
  }
  if (auto v = n["keep_old_for"]) r.get_duration(v, where + ".keep_old_for", s.keep_old_for);
  if (auto v = n["max_failures"])
    r.get_count(v, where + ".max_failures", s.max_failures, 0, 1000000);
  if (auto v = n["wait_for_first_sync"]) {
    r.get_bool(v, where + ".wait_for_first_sync", s.wait_for_first_sync);
  }
  if (auto v = n["once"]) r.get_bool(v, where + ".once", s.once);
  if (auto v = n["pre_publish"]) {
    const std::string pw = where + ".pre_publish";
    if (r.is_map(v, pw)) {
      r.check_keys(v, pw, {"exec", "timeout"});
      if (auto e = v["exec"]) {
        if (r.is_seq(e, pw + ".exec")) {
          r.get_strings(e, pw + ".exec", s.pre_publish);
          if (s.pre_publish.empty()) r.error(e, pw + ".exec must not be empty");
        }
      } else {
        r.error(v, pw + " needs exec");
      }
      if (auto t = v["timeout"]) r.get_duration(t, pw + ".timeout", s.pre_publish_timeout);
    }
  }
  if (auto v = n["notify"]) {
    if (r.is_seq(v, where + ".notify")) {
      for (size_t i = 0; i < v.size(); ++i) {
        HookConfig hook;
        load_hook(r, v[i], fmt::format("{}.notify[{}]", where, i), hook);
        s.hooks.push_back(std::move(hook));
      }
    }
  }
  c.syncs.push_back(std::move(s));
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& r) {
  auto section = std::make_shared<Section>();
  if (!r.is_seq(node, "sync")) return section;
  for (size_t i = 0; i < node.size(); ++i) load_sync(r, node[i], i, *section);
  // Two syncs must not share a root (one mirror, one set of revisions each).
  for (size_t i = 0; i < section->syncs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (!section->syncs[i].root.empty() && section->syncs[i].root == section->syncs[j].root) {
        r.error(node[i]["root"], fmt::format("sync[{}].root is also sync[{}].root", i, j));
      }
    }
  }
  return section;
}

void register_module() { module::register_kind({"sync", parse, nullptr}); }

}  // namespace sidecar::sync
