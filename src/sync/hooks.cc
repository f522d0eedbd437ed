#include "sync/hooks.h"

#include <string.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sync/git_source.h"
#include "sync/git_text.h"
#include "sync/http_source.h"

namespace sidecar::sync {
namespace {

using std::chrono::milliseconds;

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? fmt::format("SIG{}", abbrev) : std::to_string(sig);
}

std::string target_of(const HookConfig& h) {
  switch (h.kind) {
    case HookConfig::Kind::kSignal:
      return signal_name(h.signal);
    case HookConfig::Kind::kWebhook:
      return redact(h.url);
    case HookConfig::Kind::kExec: {
      std::string s;
      for (const std::string& a : h.command) s += (s.empty() ? "" : " ") + a;
      return s;
    }
  }
  return {};
}

const char* kind_of(const HookConfig& h) {
  switch (h.kind) {
    case HookConfig::Kind::kSignal:
      return "signal";
    case HookConfig::Kind::kWebhook:
      return "webhook";
    case HookConfig::Kind::kExec:
      return "exec";
  }
  return "";
}

// 0.5 s, 1 s, 2 s ... at most max_interval.
milliseconds backoff(uint32_t failures, milliseconds max_interval) {
  milliseconds d(500);
  for (uint32_t i = 1; i < failures && d < max_interval; ++i) d *= 2;
  return std::min(d, max_interval);
}

std::string tail(const std::string& s, size_t max = 300) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.size() > max) t = "..." + t.substr(t.size() - max);
  return t;
}

}  // namespace

std::string hook_id(const HookConfig& h) {
  std::string key = kind_of(h);
  key += '\0';
  switch (h.kind) {
    case HookConfig::Kind::kSignal:
      key += std::to_string(h.signal);
      break;
    case HookConfig::Kind::kWebhook:
      key += h.method + '\0' + h.url;
      break;
    case HookConfig::Kind::kExec:
      for (const std::string& a : h.command) key += a + '\0';
      break;
  }
  uint64_t hash = 14695981039346656037ull;  // FNV-1a 64
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return fmt::format("{:016x}", hash);
}

HookQueue::HookQueue(const SyncConfig& config, module::Host& host)
    : config_(config),
      host_(host),
      reaper_(host),
      marker_file_(config.root + "/.sidecar-notified") {
  // What each hook last succeeded for, by id.
  std::vector<std::pair<std::string, std::string>> markers;
  {
    std::ifstream in(marker_file_);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string id, revision;
      if (fields >> id >> revision) markers.emplace_back(id, revision);
    }
  }
  for (const HookConfig& h : config_.hooks) {
    State s;
    s.id = hook_id(h);
    for (const auto& [id, revision] : markers) {
      if (id == s.id) s.notified = revision;
    }
    s.status.kind = kind_of(h);
    s.status.target = target_of(h);
    s.status.notified = s.notified;
    hooks_.push_back(std::move(s));
  }
}

HookQueue::~HookQueue() {
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      request_stop();
      thread_.join();
    }
  }
}

void HookQueue::start(const std::string& live) {
  {
    std::lock_guard lock(mutex_);
    for (State& s : hooks_) {
      if (!live.empty() && s.notified != live) s.wanted = live;
    }
  }
  if (hooks_.empty()) return;
  thread_ = std::thread([self = shared_from_this()] {
    pthread_setname_np(pthread_self(), "sync-hooks");
    self->run();
  });
}

void HookQueue::deliver(const std::string& revision) {
  {
    std::lock_guard lock(mutex_);
    for (State& s : hooks_) {
      s.wanted = revision;  // also when it was told already: nothing older stays pending
      s.next_attempt = Clock::now();
      s.status.consecutive_failures = 0;
    }
    changed_ = true;
  }
  cv_.notify_all();
}

void HookQueue::request_stop() {
  stopping_.store(true);
  canceller_.cancel();
  {
    std::lock_guard lock(mutex_);
    changed_ = true;
  }
  cv_.notify_all();
}

void HookQueue::wait(Clock::time_point deadline) {
  if (!thread_.joinable()) return;
  std::unique_lock lock(mutex_);
  const bool done = cv_.wait_until(lock, deadline, [this] { return finished_; });
  lock.unlock();
  if (done) {
    thread_.join();
  } else {
    spdlog::warn("sync {}: a hook is still running at shutdown; leaving it", config_.name);
    thread_.detach();
  }
}

std::vector<HookStatus> HookQueue::status() const {
  std::lock_guard lock(mutex_);
  std::vector<HookStatus> out;
  for (const State& s : hooks_) {
    HookStatus st = s.status;
    st.notified = s.notified;
    st.pending = s.wanted != s.notified && s.wanted != s.given_up ? s.wanted : "";
    out.push_back(std::move(st));
  }
  return out;
}

void HookQueue::save_locked() {
  std::string text;
  for (const State& s : hooks_) {
    if (!s.notified.empty()) text += s.id + " " + s.notified + "\n";
  }
  const std::string tmp = marker_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, marker_file_, ec);
  if (ec) spdlog::warn("sync {}: cannot write {}: {}", config_.name, marker_file_, ec.message());
}

void HookQueue::record(size_t index, const std::string& revision, bool ok,
                       const std::string& error) {
  State& s = hooks_[index];
  const HookConfig& h = config_.hooks[index];
  if (ok) {
    s.notified = revision;
    ++s.status.successes;
    s.status.consecutive_failures = 0;
    s.status.last_error.clear();
    save_locked();
    return;
  }
  ++s.status.failures;
  ++s.status.consecutive_failures;
  s.status.last_error = error;
  if (s.wanted != revision) return;  // a newer revision came meanwhile: it goes now
  if (h.retries != HookConfig::kForever && s.status.consecutive_failures > h.retries) {
    s.given_up = revision;
    spdlog::error("sync {}: hook {} {} gave up on revision {} after {} attempts: {}", config_.name,
                  s.status.kind, s.status.target, revision, s.status.consecutive_failures, error);
    return;
  }
  const milliseconds delay = backoff(s.status.consecutive_failures, h.max_interval);
  s.next_attempt = Clock::now() + delay;
  spdlog::warn("sync {}: hook {} {} failed for revision {} ({}); again in {}", config_.name,
               s.status.kind, s.status.target, revision, error, format_duration(delay));
}

void HookQueue::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_.load()) {
    const auto now = Clock::now();
    size_t due = hooks_.size();
    Clock::time_point next = Clock::time_point::max();
    for (size_t i = 0; i < hooks_.size(); ++i) {
      const State& s = hooks_[i];
      if (s.wanted.empty() || s.wanted == s.notified || s.wanted == s.given_up) continue;
      if (s.next_attempt <= now) {
        due = i;
        break;
      }
      next = std::min(next, s.next_attempt);
    }
    if (due == hooks_.size()) {
      auto woken = [this] { return changed_ || stopping_.load(); };
      if (next == Clock::time_point::max()) {
        cv_.wait(lock, woken);
      } else {
        cv_.wait_until(lock, next, woken);
      }
      changed_ = false;
      continue;
    }
    const std::string revision = hooks_[due].wanted;
    lock.unlock();
    std::string error;
    const bool ok = attempt(due, revision, error);
    lock.lock();
    if (stopping_.load()) break;
    record(due, revision, ok, error);
  }
  finished_ = true;
  lock.unlock();
  cv_.notify_all();
}

bool HookQueue::run_now(const std::string& revision) {
  bool all = true;
  for (size_t i = 0; i < hooks_.size(); ++i) {
    {
      std::lock_guard lock(mutex_);
      if (hooks_[i].notified == revision) continue;
      hooks_[i].wanted = revision;
    }
    const HookConfig& h = config_.hooks[i];
    const uint32_t attempts = 1 + (h.retries_set ? h.retries : 0);
    bool ok = false;
    for (uint32_t a = 0; a < attempts && !ok && !stopping_.load(); ++a) {
      if (a > 0) {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, backoff(a, h.max_interval), [this] { return stopping_.load(); });
      }
      std::string error;
      ok = attempt(i, revision, error);
      std::lock_guard lock(mutex_);
      State& s = hooks_[i];
      if (ok) {
        s.notified = revision;
        ++s.status.successes;
        s.status.consecutive_failures = 0;
        s.status.last_error.clear();
        save_locked();
      } else {
        ++s.status.failures;
        ++s.status.consecutive_failures;
        s.status.last_error = error;
        spdlog::error("sync {}: hook {} {} failed for revision {}: {}", config_.name, s.status.kind,
                      s.status.target, revision, error);
      }
    }
    all = all && ok;
  }
  return all;
}

bool HookQueue::attempt(size_t index, const std::string& revision, std::string& error) {
  const HookConfig& hook = config_.hooks[index];
  try {
    switch (hook.kind) {
      case HookConfig::Kind::kSignal:
        if (stopping_.load()) return false;
        host_.signal_app(hook.signal);
        return true;
      case HookConfig::Kind::kWebhook: {
        const HttpResponse r =
            http_call(hook.method, hook.url, {hook.revision_header + ": " + revision}, hook.timeout,
                      &stopping_);
        const bool ok = hook.status == 0  ? true
                        : hook.status > 0 ? r.status == hook.status
                                          : r.status >= 200 && r.status < 300;
        if (!ok) error = fmt::format("answered {}", r.status);
        return ok;
      }
      case HookConfig::Kind::kExec: {
        Command c;
        c.argv = hook.command;
        c.cwd = config_.root + "/.revisions/" + revision;
        c.env = {{"SIDECAR_SYNC_REVISION", revision}, {"GITSYNC_HASH", revision}};
        c.deadline = Clock::now() + hook.timeout;
        const ChildResult r = run_child(c, reaper_, &canceller_);
        if (!r.out.empty()) {
          spdlog::debug("sync {}: hook {}: {}", config_.name, hook.command.front(), tail(r.out));
        }
        if (r.ok()) return true;
        error = r.end == ChildResult::End::kTimedOut
                    ? fmt::format("timed out after {}", format_duration(hook.timeout))
                    : r.describe();
        if (!r.err.empty() && r.end != ChildResult::End::kNotStarted) {
          error += ": " + tail(r.err);
        }
        return false;
      }
    }
  } catch (const std::exception& e) {
    error = e.what();
  }
  return false;
}

}  // namespace sidecar::sync
