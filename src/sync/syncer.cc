#include "sync/syncer.h"

#include <pthread.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sync/destination.h"
#include "sync/git_source.h"
#include "sync/http_source.h"

namespace sidecar::sync {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// 5s, 10s, 20s ... up to max(period, 5 min), with +-20% jitter.
milliseconds backoff(uint32_t failures, milliseconds period) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const milliseconds cap = std::max<milliseconds>(period, std::chrono::minutes(5));
  milliseconds d = std::chrono::seconds(5);
  for (uint32_t i = 1; i < failures && d < cap; ++i) d *= 2;
  d = std::min(d, cap);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return milliseconds(static_cast<int64_t>(static_cast<double>(d.count()) * jitter(rng)));
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

struct Syncer::Impl {
  explicit Impl(const SyncConfig& c)
      : destination(c.root, c.link, c.copy_to, c.keep_old_for),
        git(c.root + "/.git-mirror"),
        http(c.root + "/.http") {}
  Destination destination;
  GitSource git;
  HttpSource http;
};

Syncer::Syncer(SyncConfig config, module::Host& host) : config_(std::move(config)), host_(host) {
  status_.name = config_.name;
}

Syncer::~Syncer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Syncer::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sync");
    run();
  });
}

void Syncer::trigger() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    triggered_ = true;
  }
  cv_.notify_all();
}

SyncStatus Syncer::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SyncStatus s = status_;
  s.ready = (!config_.wait_for_first_sync || !s.revision.empty()) &&
            (config_.max_failures == 0 || s.consecutive_failures < config_.max_failures);
  return s;
}

bool Syncer::ready() const { return status().ready; }

void Syncer::wait_for(milliseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, delay, [this] { return stop_ || triggered_; });
  triggered_ = false;
}

void Syncer::run() {
  try {
    impl_ = std::make_unique<Impl>(config_);
  } catch (const std::exception& e) {
    spdlog::error("sync {}: {}", config_.name, e.what());
    std::lock_guard<std::mutex> lock(mutex_);
    status_.last_error = e.what();
    status_.done_once = config_.once;
    ++status_.failures;
    ++status_.consecutive_failures;
    if (config_.once) host_.once_done();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.revision = impl_->destination.live();
  }
  // The app may have missed the hooks of the live revision (a restart during
  // the last sync): tell it now.
  const std::string live = impl_->destination.live();
  if (!live.empty() && !config_.hooks.empty() &&
      read_first_line(impl_->destination.state_file("sidecar-notified")) != live) {
    notify(live);
  }
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    const auto t0 = Clock::now();
    bool ok = true;
    try {
      const Result r = sync_once();
      std::lock_guard<std::mutex> lock(mutex_);
      if (r == Result::kUpdated) {
        ++status_.successes;
      } else {
        ++status_.unchanged;
      }
      status_.consecutive_failures = 0;
      status_.last_error.clear();
      status_.last_success_time = now_seconds();
    } catch (const std::exception& e) {
      ok = false;
      spdlog::error("sync {}: {}", config_.name, e.what());
      std::lock_guard<std::mutex> lock(mutex_);
      ++status_.failures;
      ++status_.consecutive_failures;
      status_.last_error = e.what();
    }
    durations_.observe(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
    impl_->destination.cleanup();
    if (config_.once) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        status_.done_once = true;
      }
      host_.once_done();
      // Keep removing old revisions, nothing else.
      while (true) {
        wait_for(milliseconds(1000));
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
      }
    }
    uint32_t failures = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      failures = status_.consecutive_failures;
    }
    const milliseconds delay = ok ? config_.period : backoff(failures, config_.period);
    if (!ok) spdlog::info("sync {}: next attempt in {}ms", config_.name, delay.count());
    wait_for(delay);
  }
}

Syncer::Result Syncer::sync_once() {
  const auto deadline = Clock::now() + config_.timeout;
  std::string id;
  if (!config_.git_repo.empty()) {
    GitRequest r{config_.git_repo, config_.git_ref,     config_.credentials_file,
                 config_.ssh_key,  config_.known_hosts, deadline};
    id = impl_->git.fetch(r);
    if (id == impl_->destination.live()) return Result::kUnchanged;
    impl_->destination.publish(id, [&](const std::string& dir) { impl_->git.checkout(id, dir); });
  } else {
    auto fetched = impl_->http.fetch(config_.http_url, deadline);
    if (!fetched || *fetched == impl_->destination.live()) return Result::kUnchanged;
    id = *fetched;
    impl_->destination.publish(id, [&](const std::string& dir) {
      impl_->http.extract(config_.http_url, config_.http_file, dir);
    });
  }
  spdlog::info("sync {}: revision {} is live", config_.name, id);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    status_.revision = id;
  }
  notify(id);
  return Result::kUpdated;
}

void Syncer::notify(const std::string& revision) {
  bool all = true;
  for (const HookConfig& hook : config_.hooks) {
    bool done = false;
    milliseconds delay(500);
    for (uint32_t attempt = 0; attempt <= hook.retries && !done; ++attempt) {
      if (attempt > 0) {
        wait_for(delay);
        delay *= 2;
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_) return;
      }
      done = run_hook(hook, revision);
    }
    if (!done) {
      all = false;
      spdlog::error("sync {}: a hook failed for revision {} after {} attempts", config_.name,
                    revision, hook.retries + 1);
    }
  }
  if (all) {
    const std::string path = impl_->destination.state_file("sidecar-notified");
    std::ofstream(path + ".tmp") << revision << "\n";
    std::filesystem::rename(path + ".tmp", path);
  }
}

bool Syncer::run_hook(const HookConfig& hook, const std::string& revision) {
  try {
    switch (hook.kind) {
      case HookConfig::Kind::kSignal:
        host_.signal_app(hook.signal);
        return true;
      case HookConfig::Kind::kWebhook: {
        const int status = http_request(hook.method, hook.url,
                                        {hook.revision_header + ": " + revision}, hook.timeout);
        const bool ok = hook.status != 0 ? status == hook.status : status >= 200 && status < 300;
        if (!ok) spdlog::warn("sync {}: webhook {} answered {}", config_.name, hook.url, status);
        return ok;
      }
      case HookConfig::Kind::kExec: {
        const auto code = host_.run(hook.command, impl_->destination.revision_dir(revision),
                                    {{"SIDECAR_SYNC_REVISION", revision}}, hook.timeout);
        if (code != 0) {
          spdlog::warn("sync {}: hook {} {}", config_.name, hook.command.front(),
                       code ? fmt::format("exited with {}", *code) : std::string("did not finish"));
        }
        return code == 0;
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("sync {}: hook failed: {}", config_.name, e.what());
  }
  return false;
}

}  // namespace sidecar::sync
