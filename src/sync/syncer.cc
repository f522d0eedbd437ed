#include "sync/syncer.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "sync/destination.h"
#include "sync/git_source.h"
#include "sync/git_text.h"
#include "sync/http_source.h"

namespace sidecar::sync {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// After the n-th failure in a row: period/10, doubling, at most period, +-10%.
milliseconds retry_delay(uint32_t failures, milliseconds period) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  milliseconds d = std::max<milliseconds>(period / 10, milliseconds(10));
  for (uint32_t i = 1; i < failures && d < period; ++i) d *= 2;
  d = std::min(d, period);
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  return milliseconds(static_cast<int64_t>(static_cast<double>(d.count()) * jitter(rng)));
}

void touch(const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0) {
    spdlog::warn("sync: cannot touch {}: {}", path, std::strerror(errno));
    return;
  }
  ::futimens(fd, nullptr);
  ::close(fd);
}

std::string tail(const std::string& s, size_t max = 300) {
  std::string t = s;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.size() > max) t = "..." + t.substr(t.size() - max);
  return t;
}

}  // namespace

Syncer::Syncer(SyncConfig config, module::Host& host)
    : config_(std::move(config)),
      host_(host),
      reaper_(host),
      hooks_(std::make_shared<HookQueue>(config_, host)) {
  status_.name = config_.name;
}

Syncer::~Syncer() {
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      request_stop();
      thread_.join();
    }
  }
}

void Syncer::start() {
  thread_ = std::thread([self = shared_from_this()] {
    pthread_setname_np(pthread_self(), "sync");
    self->run();
    {
      std::lock_guard lock(self->mutex_);
      self->finished_ = true;
    }
    self->cv_.notify_all();
  });
}

void Syncer::trigger() {
  {
    std::lock_guard lock(mutex_);
    triggered_ = true;
  }
  cv_.notify_all();
}

void Syncer::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_flag_.store(true);
  cv_.notify_all();
  canceller_.cancel();
  hooks_->request_stop();
}

void Syncer::wait(Clock::time_point deadline) {
  if (thread_.joinable()) {
    std::unique_lock lock(mutex_);
    const bool done = cv_.wait_until(lock, deadline, [this] { return finished_; });
    lock.unlock();
    if (done) {
      thread_.join();
    } else {
      spdlog::warn("sync {}: still busy at shutdown; leaving it", config_.name);
      thread_.detach();
    }
  }
  hooks_->wait(deadline);
}

bool Syncer::stopping() const {
  std::lock_guard lock(mutex_);
  return stop_;
}

SyncStatus Syncer::status() const {
  SyncStatus s;
  {
    std::lock_guard lock(mutex_);
    s = status_;
  }
  s.ready = (!config_.wait_for_first_sync || !s.revision.empty()) &&
            (config_.max_failures == 0 || s.consecutive_failures < config_.max_failures);
  s.hooks = hooks_->status();
  return s;
}

bool Syncer::ready() const { return status().ready; }

void Syncer::wait_for(milliseconds delay) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, delay, [this] { return stop_ || triggered_; });
  triggered_ = false;
}

void Syncer::write_error_file(const std::string& error) {
  if (config_.error_file.empty()) return;
  std::error_code ec;
  if (error.empty()) {
    fs::remove(config_.error_file, ec);
    return;
  }
  fs::create_directories(fs::path(config_.error_file).parent_path(), ec);
  const std::string tmp = config_.error_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << error << "\n";
  }
  fs::rename(tmp, config_.error_file, ec);
  if (ec)
    spdlog::warn("sync {}: cannot write {}: {}", config_.name, config_.error_file, ec.message());
}

void Syncer::remove_tree(const std::string& dir) {
  if (git_) {
    git_->remove(dir);
    return;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("sync {}: cannot remove {}: {}", config_.name, dir, ec.message());
}

void Syncer::run() {
  auto remove = [this](const std::string& dir) { remove_tree(dir); };
  try {
    destination_ = std::make_unique<Destination>(config_);
    if (!config_.git_repo.empty()) {
      git_ = std::make_unique<GitSource>(config_, reaper_, canceller_);
    } else {
      http_ =
          std::make_unique<HttpSource>(config_.root + "/.http", config_.http_proxy, &stop_flag_);
    }
  } catch (const std::exception& e) {
    spdlog::error("sync {}: {}", config_.name, e.what());
    write_error_file(e.what());
    {
      std::lock_guard lock(mutex_);
      status_.last_error = e.what();
      status_.done_once = config_.once;
      status_.once_failed = true;
      ++status_.failures;
      ++status_.consecutive_failures;
    }
    if (config_.once && !stopping()) host_.once_done();
    return;
  }
  const std::string live = destination_->live();
  {
    std::lock_guard lock(mutex_);
    status_.revision = live;
  }
  // The app may have missed the hooks of the live revision (a restart
  // during the last sync), or a hook is new: they tell it now.
  if (!config_.once) hooks_->start(live);

  while (!stopping()) {
    const auto t0 = Clock::now();
    bool ok = true;
    fetched_ = false;
    try {
      const Result r = sync_once();
      std::lock_guard lock(mutex_);
      switch (r) {
        case Result::kUpdated:
          ++status_.successes;
          break;
        case Result::kUnchanged:
          ++status_.unchanged;
          break;
        case Result::kRepaired:
          ++status_.repairs;
          break;
      }
      status_.consecutive_failures = 0;
      status_.last_error.clear();
      status_.last_success_time = now_seconds();
    } catch (const std::exception& e) {
      ok = false;
      const std::string error = redact(e.what());
      if (stopping()) break;
      spdlog::error("sync {}: {}", config_.name, error);
      write_error_file(error);
      std::lock_guard lock(mutex_);
      ++status_.failures;
      ++status_.consecutive_failures;
      status_.last_error = error;
    }
    if (ok) write_error_file("");
    durations_.observe(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
    const size_t removed = destination_->cleanup(remove);
    if (git_) {
      git_->maintain(fetched_ || removed > 0);
      std::lock_guard lock(mutex_);
      status_.git_max_rss_bytes = git_->max_rss_bytes();
    }
    if (config_.once) {
      bool hooks_ok = true;
      const std::string now_live = destination_->live();
      if (ok && !config_.hooks.empty() && !now_live.empty()) hooks_ok = hooks_->run_now(now_live);
      {
        std::lock_guard lock(mutex_);
        status_.done_once = true;
        status_.once_failed = !ok || !hooks_ok || status_.revision.empty();
      }
      if (!stopping()) host_.once_done();
      // Keep removing old revisions, nothing else.
      while (!stopping()) {
        wait_for(milliseconds(1000));
        destination_->cleanup(remove);
      }
      break;
    }
    uint32_t failures = 0;
    {
      std::lock_guard lock(mutex_);
      failures = status_.consecutive_failures;
    }
    const milliseconds delay = ok ? config_.period : retry_delay(failures, config_.period);
    if (!ok) spdlog::info("sync {}: next attempt in {}ms", config_.name, delay.count());
    wait_for(delay);
  }
}

Syncer::Result Syncer::sync_once() {
  const auto deadline = Clock::now() + config_.timeout;
  const std::string live = destination_->live();
  auto remove = [this](const std::string& dir) { remove_tree(dir); };
  bool repair = false;
  std::string id;
  if (git_) {
    git_->begin(deadline);
    id = git_->fetch(live);
    if (id == live) {
      if (destination_->complete(id) && git_->verify(id, destination_->revision_dir(id))) {
        return Result::kUnchanged;
      }
      spdlog::warn("sync {}: the live tree of {} is missing or damaged; building it again",
                   config_.name, id);
      destination_->discard(id, remove);
      // Without the shortcut for the live revision: its commit may be gone
      // from the mirror too (then the ref may also have moved meanwhile).
      id = git_->fetch("");
      repair = id == live;
    }
    fetched_ = true;
    destination_->build(
        id, [&](const std::string& dir) { git_->checkout(id, dir); }, remove);
  } else {
    if (!live.empty() && !destination_->complete(live)) {
      spdlog::warn("sync {}: the live tree of {} is missing; downloading it again", config_.name,
                   live);
      destination_->discard(live, remove);
      http_->forget();
    }
    auto fetched = http_->fetch(config_.http_url, deadline);
    if (!fetched) return Result::kUnchanged;
    id = *fetched;
    if (id == live && destination_->complete(live)) return Result::kUnchanged;
    repair = id == live;
    destination_->build(
        id,
        [&](const std::string& dir) { http_->extract(config_.http_url, config_.http_file, dir); },
        remove);
  }
  publish(id, live, repair);
  return repair ? Result::kRepaired : Result::kUpdated;
}

void Syncer::publish(const std::string& id, const std::string& live, bool repair) {
  if (!config_.pre_publish.empty() && !repair) {
    // The gate: a revision it rejects never goes live.
    Command c;
    c.argv = config_.pre_publish;
    c.cwd = destination_->revision_dir(id);
    c.env = {{"SIDECAR_SYNC_REVISION", id},
             {"SIDECAR_SYNC_PREVIOUS_REVISION", live},
             {"GITSYNC_HASH", id}};
    c.deadline = Clock::now() + config_.pre_publish_timeout;
    const ChildResult r = run_child(c, reaper_, &canceller_);
    if (!r.ok()) {
      std::string why =
          r.end == ChildResult::End::kTimedOut
              ? fmt::format("timed out after {}", format_duration(config_.pre_publish_timeout))
              : r.describe();
      const std::string out = tail(r.err.empty() ? r.out : r.err);
      if (!out.empty() && r.end != ChildResult::End::kNotStarted) why += ": " + out;
      throw SyncError(fmt::format("pre_publish rejected revision {} ({}); {} stays live", id, why,
                                  live.empty() ? "nothing" : live));
    }
  }
  destination_->switch_to(id);
  if (repair) {
    spdlog::info("sync {}: the live tree of {} is back", config_.name, id);
    return;
  }
  spdlog::info("sync {}: revision {} is live", config_.name, id);
  if (!config_.touch_file.empty()) touch(config_.touch_file);
  {
    std::lock_guard lock(mutex_);
    status_.revision = id;
  }
  if (!config_.once) hooks_->deliver(id);
}

}  // namespace sidecar::sync
