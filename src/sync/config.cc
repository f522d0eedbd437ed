#include "sync/config.h"

#include <fmt/format.h>

#include "module/module.h"

namespace sidecar::sync {
namespace {

void load_hook(config::Reader& r, const YAML::Node& n, const std::string& where, HookConfig& h) {
  if (!r.is_map(n, where)) return;
  r.check_keys(
      n, where,
      {"signal", "webhook", "exec", "method", "status", "revision_header", "timeout", "retries"});
  int kinds = 0;
  if (auto v = n["signal"]) {
    ++kinds;
    h.kind = HookConfig::Kind::kSignal;
    r.get_signal(v, where + ".signal", h.signal);
  }
  if (auto v = n["webhook"]) {
    ++kinds;
    h.kind = HookConfig::Kind::kWebhook;
    if (r.get_string(v, where + ".webhook", h.url) && !h.url.starts_with("http://") &&
        !h.url.starts_with("https://")) {
      r.error(v, where + ".webhook must be an http:// or https:// URL");
    }
  }
  if (auto v = n["exec"]) {
    ++kinds;
    h.kind = HookConfig::Kind::kExec;
    if (r.is_seq(v, where + ".exec")) {
      for (size_t i = 0; i < v.size(); ++i) {
        std::string arg;
        if (r.get_string(v[i], where + ".exec", arg)) h.command.push_back(arg);
      }
      if (h.command.empty()) r.error(v, where + ".exec must not be empty");
    }
  }
  if (kinds != 1) r.error(n, where + " takes one of signal, webhook or exec");
  if (auto v = n["method"]) r.get_string(v, where + ".method", h.method);
  if (auto v = n["status"]) {
    uint32_t st = 0;
    if (r.get_count(v, where + ".status", st, 100, 599)) h.status = static_cast<int>(st);
  }
  if (auto v = n["revision_header"]) r.get_string(v, where + ".revision_header", h.revision_header);
  if (auto v = n["timeout"]) r.get_duration(v, where + ".timeout", h.timeout);
  if (auto v = n["retries"]) r.get_count(v, where + ".retries", h.retries, 0, 100);
}

void load_sync(config::Reader& r, const YAML::Node& n, size_t index, Section& c) {
  const std::string where = fmt::format("sync[{}]", index);
  if (!r.is_map(n, where)) return;
  r.check_keys(n, where,
               {"name", "git", "http", "root", "link", "copy_to", "period", "timeout",
                "keep_old_for", "max_failures", "wait_for_first_sync", "once", "notify"});
  SyncConfig s;
  if (auto v = n["name"]) {
    r.get_string(v, where + ".name", s.name);
    for (const SyncConfig& other : c.syncs) {
      if (other.name == s.name) r.error(v, fmt::format("sync '{}' is defined twice", s.name));
    }
  } else {
    r.error(n, where + " needs a name");
  }
  if (auto g = n["git"]) {
    const std::string gw = where + ".git";
    if (r.is_map(g, gw)) {
      r.check_keys(g, gw, {"repo", "ref", "credentials_file", "ssh_key", "known_hosts"});
      if (auto v = g["repo"]) {
        r.get_string(v, gw + ".repo", s.git_repo);
      } else {
        r.error(g, gw + " needs a repo");
      }
      if (auto v = g["ref"]) r.get_string(v, gw + ".ref", s.git_ref);
      if (auto v = g["credentials_file"]) {
        r.get_string(v, gw + ".credentials_file", s.credentials_file);
      }
      if (auto v = g["ssh_key"]) r.get_string(v, gw + ".ssh_key", s.ssh_key);
      if (auto v = g["known_hosts"]) r.get_string(v, gw + ".known_hosts", s.known_hosts);
      const bool ssh =
          s.git_repo.starts_with("ssh://") || (s.git_repo.find("://") == std::string::npos &&
                                               s.git_repo.find('@') != std::string::npos);
      if (ssh && s.known_hosts.empty()) {
        r.error(g, gw + ": ssh needs known_hosts (host keys are always checked)");
      }
    }
  }
  if (auto h = n["http"]) {
    const std::string hw = where + ".http";
    if (r.is_map(h, hw)) {
      r.check_keys(h, hw, {"url", "file"});
      if (auto v = h["url"]) {
        if (r.get_string(v, hw + ".url", s.http_url) && !s.http_url.starts_with("http://") &&
            !s.http_url.starts_with("https://")) {
          r.error(v, hw + ".url must be an http:// or https:// URL");
        }
      } else {
        r.error(h, hw + " needs a url");
      }
      if (auto v = h["file"]) r.get_string(v, hw + ".file", s.http_file);
    }
  }
  if (s.git_repo.empty() == s.http_url.empty()) r.error(n, where + " takes one of git or http");
  if (auto v = n["root"]) {
    if (r.get_string(v, where + ".root", s.root) && (s.root.empty() || s.root[0] != '/')) {
      r.error(v, where + ".root must be an absolute path");
    }
  } else {
    r.error(n, where + " needs a root");
  }
  if (auto v = n["link"]) {
    if (r.get_string(v, where + ".link", s.link) &&
        (s.link.empty() || s.link.find('/') != std::string::npos || s.link[0] == '.')) {
      r.error(v, where + ".link must be a plain name inside root");
    }
  }
  if (auto v = n["copy_to"]) r.get_string(v, where + ".copy_to", s.copy_to);
  if (auto v = n["period"]) {
    if (r.get_duration(v, where + ".period", s.period) && s.period.count() == 0) {
      r.error(v, where + ".period must be more than 0");
    }
  }
  if (auto v = n["timeout"]) r.get_duration(v, where + ".timeout", s.timeout);
  if (auto v = n["keep_old_for"]) r.get_duration(v, where + ".keep_old_for", s.keep_old_for);
  if (auto v = n["max_failures"])
    r.get_count(v, where + ".max_failures", s.max_failures, 0, 1000000);
  if (auto v = n["wait_for_first_sync"]) {
    r.get_bool(v, where + ".wait_for_first_sync", s.wait_for_first_sync);
  }
  if (auto v = n["once"]) r.get_bool(v, where + ".once", s.once);
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
  return section;
}

void register_module() { module::register_kind({"sync", parse, nullptr}); }

}  // namespace sidecar::sync
