#include "app/run.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "accesslog/writer.h"
#include "acme/config.h"
#include "admin/admin_server.h"
#include "admin/dashboard.h"
#include "config/config_json.h"
#include "config/discovered.h"
#include "config/loader.h"
#include "core/cpu.h"
#include "core/footprint.h"
#include "core/json.h"
#include "core/logging.h"
#include "filters/cache/store.h"
#include "filters/registry.h"
#include "filters/stats.h"
#include "logship/config.h"
#include "module/module.h"
#include "proxy/server.h"
#include "proxy/stream.h"
#include "registry/config.h"
#include "stats/metric_writer.h"
#include "stats/process.h"
#include "supervisor/readiness.h"
#include "supervisor/supervisor.h"
#include "sync/config.h"
#include "tls/acme_challenges.h"
#include "tls/store.h"
#include "tracing/config.h"
#include "upstream/circuit_breaker.h"
#include "upstream/health_report.h"

namespace sidecar::app {
namespace {

std::shared_ptr<const config::Config> load(const std::string& path) {
  if (path.empty()) return config::load_string(config::default_yaml(), "<embedded default>");
  return config::load_file(path);
}

void print_errors(const config::ConfigError& e) {
  for (const std::string& m : e.messages()) std::fprintf(stderr, "%s\n", m.c_str());
}

std::optional<pid_t> read_pid_file(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGQUIT:
      return "SIGQUIT";
    default:
      return "signal";
  }
}

// The running sidecar: proxy, admin endpoint, supervised app, and the order
// in which they start, reload and stop. Everything here runs on the main
// thread's io_context; the data path runs on the server's workers.
//
// Shutdown (SIGTERM/SIGINT, POST /quit, or the app exiting by itself):
//   1. /ready answers 503 at once;
//   2. everything is still served for drain.delay (endpoint removal);
//   3. inbound listeners stop accepting, their requests in flight finish
//      (up to drain.timeout), keep-alive responses carry Connection: close;
//   4. the app gets the signal (SIGTERM for /quit), SIGKILL after
//      app.stop_timeout; outbound listeners serve it until it has exited;
//   5. outbound listeners drain, and the process exits with the app's code.
class Process : public module::Host {
 public:
  Process(const RunOptions& options, std::shared_ptr<const config::Config> config)
      : options_(options),
        cfg_(std::move(config)),
        io_(1),
        store_(cfg_->workers != 0 ? cfg_->workers : core::available_cpus(),
               proxy::reject_reason_names()),
        tls_(io_),
        signals_(io_),
        delay_timer_(io_),
        watch_timer_(io_) {}

  int run() {
    // Clusters with discovery start with their configured endpoints (or none).
    cfg_ = config::with_discovered_endpoints(cfg_, discovered_);
    try {
      if (cfg_->access_log.enabled) {
        access_log_ = std::make_unique<accesslog::Writer>(cfg_->access_log, store_.workers());
      }
      tls_.apply(*cfg_);
      server_ = std::make_unique<proxy::Server>(cfg_, store_, tls_, access_log_.get());
      server_->set_discovery_sink(
          [this](const std::string& cluster, std::vector<config::Address> endpoints) {
            update_cluster_endpoints(cluster, std::move(endpoints));
          });
      server_->bind();
      admin_ = std::make_unique<admin::AdminServer>(io_, cfg_->admin.address);
    } catch (const std::system_error& e) {
      spdlog::error("{}", e.what());
      return kExitInternal;
    } catch (const std::runtime_error& e) {
      spdlog::error("{}", e.what());  // a certificate file changed since validation
      return kExitConfig;
    }
    register_admin();
    dashboard_ = std::make_unique<admin::Dashboard>(io_, *admin_, [this] {
      std::vector<std::string> keys;
      for (const auto& m : modules_) keys.push_back(m->key());
      return keys;
    });
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGCHLD}) {
      signals_.add(sig);
    }
    wait_signal();
    admin_->start();
    server_->start();
    for (const auto& [name, address] : server_->listener_addresses()) {
      spdlog::info("listener {} on {}", name, address.to_string());
    }
    spdlog::info("admin on {}; {} worker{}; config {}", admin_->address().to_string(),
                 server_->worker_count(), server_->worker_count() == 1 ? "" : "s", cfg_->source);
    write_admin_address();

    try {
      modules_ = module::create_all(*cfg_, *this);
    } catch (const std::runtime_error& e) {
      spdlog::error("{}", e.what());
      return kExitInternal;
    }
    for (auto& m : modules_) {
      admin_->handle("GET", "/" + m->key(),
                     [m = m.get()](const admin::AdminRequest&, admin::AdminResponse& r) {
                       r.body = m->status_json() + "\n";
                       r.content_type = "application/json";
                     });
      for (module::AdminRoute& route : m->admin_routes()) {
        admin_->handle(route.method, route.path, std::move(route.handler));
      }
      m->start();
    }
    // The app starts only now: listeners and admin are up, so its first
    // outbound call finds a listener, and its readiness can be reported.
    if (!options_.app_command.empty()) start_app();
    if (!options_.app_command.empty() || cfg_->app.ready.configured) {
      probe_ = std::make_unique<supervisor::ReadinessProbe>(io_, cfg_->app.port, cfg_->app.ready);
      probe_->start();
    }
    started_ = true;
    if (cfg_->watch) watch_config();
    release_startup_pages();

    io_.run();
    const auto deadline = std::chrono::steady_clock::now() + cfg_->drain.timeout;
    for (auto& m : modules_) m->stop(deadline);
    modules_.clear();
    if (probe_) probe_->stop();
    server_->stop();
    dashboard_.reset();
    admin_.reset();
    access_log_.reset();  // writes what is queued
    spdlog::info("exit {}", exit_code_);
    return exit_code_;
  }

 private:
  // A second after start-up (workers and modules have settled), the pages
  // of code and read-only data used only while starting leave the RSS
  // (core/footprint.h).
  void release_startup_pages() {
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::seconds(1));
    timer->async_wait([timer](const boost::system::error_code& ec) {
      if (!ec) core::release_startup_pages();
    });
  }

  bool ready() const {
    if (!started_ || shutting_down_ || draining_ || (probe_ && !probe_->ready())) return false;
    for (const auto& m : modules_) {
      if (!m->ready()) return false;
    }
    return true;
  }

  // module::Host. Called from module threads: everything goes through the
  // main thread's io_context, where the app and all children are managed.
  void signal_app(int sig) override {
    boost::asio::post(io_, [this, sig] {
      if (app_) app_->forward(sig);
    });
  }

  std::optional<int> run(const std::vector<std::string>& argv, const std::string& cwd,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         std::chrono::milliseconds timeout) override {
    auto result = std::make_shared<std::promise<std::optional<int>>>();
    auto future = result->get_future();
    boost::asio::post(io_, [this, argv, cwd, env, timeout, result] {
      try {
        auto child = std::make_shared<supervisor::AppProcess>(argv, env, cwd);
        auto timer = std::make_shared<boost::asio::steady_timer>(io_, timeout);
        commands_[child->pid()] = [child, timer, result](int status) {
          timer->cancel();
          child->on_reaped(child->pid(), status);
          result->set_value(child->exit_code());
        };
        timer->async_wait([child](const boost::system::error_code& ec) {
          if (!ec) child->signal(SIGKILL);  // reaped (and reported) by on_signal
        });
      } catch (const std::system_error& e) {
        spdlog::warn("{}", e.what());
        result->set_value(std::nullopt);
      }
    });
    auto code = future.get();
    return code && *code >= 128 ? std::nullopt : code;
  }

  pid_t spawn_child(const std::function<pid_t()>& spawn) override {
    std::lock_guard lock(reap_mutex_);
    const pid_t pid = spawn();
    if (pid > 0) module_children_[pid] = std::nullopt;
    return pid;
  }

  bool reap_child(pid_t pid, int& wait_status, rusage& usage) override {
    std::lock_guard lock(reap_mutex_);
    auto it = module_children_.find(pid);
    if (it == module_children_.end()) return false;
    if (!it->second) {
      int status = 0;
      rusage u{};
      if (::wait4(pid, &status, WNOHANG, &u) != pid) return false;
      it->second = {status, u};
    }
    wait_status = it->second->first;
    usage = it->second->second;
    module_children_.erase(it);
    return true;
  }

  std::shared_ptr<const config::Config> config() const override {
    std::lock_guard lock(cfg_mutex_);
    return cfg_;
  }

  void provide_certificate(const std::string& listener, const std::string& cert_pem,
                           const std::string& key_pem, const std::string& source) override {
    boost::asio::post(io_, [this, listener, cert_pem, key_pem, source] {
      tls_.provide(listener, {source, cert_pem, key_pem});
    });
  }

  void set_acme_challenge(const std::string& token, const std::string& key_authorization) override {
    tls::set_acme_challenge(token, key_authorization);
  }

  void clear_acme_challenge(const std::string& token) override { tls::clear_acme_challenge(token); }

  void once_done() override {
    boost::asio::post(io_, [this] {
      bool all_done = true, all_ok = true;
      for (const auto& m : modules_) {
        const module::Module::Once once = m->once();
        all_done = all_done && once != module::Module::Once::kRunning;
        all_ok = all_ok && once != module::Module::Once::kFailed;
      }
      // An init container: only one-off syncs, nothing to serve, no app.
      if (all_done && cfg_->listeners.empty() && !app_ && !shutting_down_) {
        exit_code_ = all_ok ? kExitOk : 1;
        shutdown(all_ok ? "sync once: done" : "sync once: failed", SIGTERM);
      }
    });
  }

  void subscribe_app_output(module::AppOutputFn fn) override {
    std::lock_guard lock(output_mutex_);
    output_subscribers_->push_back(std::move(fn));
  }

  bool process_ready() override {
    auto answer = std::make_shared<std::promise<bool>>();
    auto future = answer->get_future();
    boost::asio::post(io_, [this, answer] { answer->set_value(ready()); });
    if (future.wait_for(std::chrono::seconds(1)) != std::future_status::ready) return false;
    return future.get();
  }

  // Discovery: a new config snapshot with the cluster's endpoints replaced,
  // published to the workers like a reload (config/discovered.h).
  void update_cluster_endpoints(const std::string& cluster,
                                std::vector<config::Address> endpoints) override {
    boost::asio::post(io_, [this, cluster, endpoints = std::move(endpoints)]() mutable {
      discovered_[cluster] = std::move(endpoints);
      // A drain closes listeners that a reload of the server would open again.
      if (shutting_down_ || draining_) return;
      auto next = config::with_discovered_endpoints(cfg_, discovered_);
      if (next == cfg_) return;
      try {
        server_->reload(next);
      } catch (const std::runtime_error& e) {
        spdlog::error("discovered endpoints of cluster {} not applied: {}", cluster, e.what());
        return;
      }
      std::lock_guard lock(cfg_mutex_);
      cfg_ = next;
    });
  }

  void start_app() {
    // Orphans of the app (its children's children) are reparented to us, and
    // reaped, also when we are not PID 1.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    app_ = std::make_unique<supervisor::Supervisor>(io_, options_.app_command, cfg_->app,
                                                    [this](int code) { on_app_exit(code); });
    // A module wants the app's output (log shipping): it goes through pipes.
    if (std::lock_guard lock(output_mutex_); !output_subscribers_->empty()) {
      app_->capture_output([subscribers = output_subscribers_](int fd, std::string_view data) {
        const auto stream = fd == 2 ? module::AppStream::kStderr : module::AppStream::kStdout;
        for (const auto& fn : *subscribers) fn(stream, data);
      });
    }
    try {
      app_->start();
    } catch (const std::system_error& e) {
      spdlog::error("{}", e.what());
      app_.reset();
      exit_code_ = kExitInternal;
      shutdown("the app could not start", SIGTERM);
    }
  }

  void on_app_exit(int code) {
    exit_code_ = code;
    if (!shutting_down_) {
      shutdown(fmt::format("the app exited with code {}", code), SIGTERM);
    } else if (stopping_app_) {
      finish();
    }
  }

  void wait_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      on_signal(sig);
      wait_signal();
    });
  }

  void on_signal(int sig) {
    switch (sig) {
      case SIGCHLD: {
        // Children of modules (spawn_child) keep their exit for reap_child;
        // the others are handled once the lock is released.
        std::vector<std::pair<pid_t, int>> reaped;
        {
          std::lock_guard lock(reap_mutex_);
          int status = 0;
          rusage usage{};
          pid_t pid;
          while ((pid = ::wait4(-1, &status, WNOHANG, &usage)) > 0) {
            if (auto it = module_children_.find(pid); it != module_children_.end()) {
              it->second = {status, usage};
            } else {
              reaped.emplace_back(pid, status);
            }
          }
        }
        for (const auto& [pid, status] : reaped) {
          if (app_ && app_->on_reaped(pid, status)) continue;
          if (auto it = commands_.find(pid); it != commands_.end()) {
            auto done = std::move(it->second);
            commands_.erase(it);
            done(status);
          }
        }
        return;
      }
      case SIGTERM:
      case SIGINT:
        if (shutting_down_) {
          spdlog::warn("second {}: exiting now", signal_name(sig));
          if (app_) app_->forward(SIGKILL);
          io_.stop();
          return;
        }
        shutdown(signal_name(sig), sig);
        return;
      case SIGHUP:
        reload("SIGHUP");
        break;
      case SIGUSR1:
        if (access_log_) access_log_->reopen();
        break;
      default:
        break;
    }
    if (sig == SIGHUP || sig == SIGUSR1 || sig == SIGUSR2) {
      for (auto& m : modules_) m->on_signal(sig);
    }
    // Like tini: the app sees the signals it would see without us.
    if (app_) app_->forward(sig);
  }

  void shutdown(const std::string& why, int app_signal) {
    if (shutting_down_) return;
    shutting_down_ = true;
    app_signal_ = app_signal;
    if (app_) app_->hold();
    for (auto& m : modules_) m->on_shutdown();
    spdlog::info(
        "shutting down ({}): not ready; serving {}ms more, then draining inbound "
        "listeners for up to {}ms",
        why, cfg_->drain.delay.count(), cfg_->drain.timeout.count());
    delay_timer_.expires_after(cfg_->drain.delay);
    delay_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      server_->drain(config::Direction::kInbound, io_, cfg_->drain.timeout, [this](bool clean) {
        if (clean) {
          spdlog::info("inbound listeners drained");
        } else {
          spdlog::warn("drain timeout: closing the inbound connections left");
        }
        stop_app();
      });
    });
  }

  void stop_app() {
    if (app_ && app_->running()) {
      stopping_app_ = true;
      app_->stop(app_signal_);  // on_app_exit -> finish()
      return;
    }
    finish();
  }

  void finish() {
    if (finishing_) return;
    finishing_ = true;
    server_->drain(config::Direction::kOutbound, io_, cfg_->drain.timeout,
                   [this](bool) { io_.stop(); });
  }

  void reload(const std::string& why) {
    if (shutting_down_) return;
    if (options_.config_path.empty()) {
      spdlog::info("{}: running on the embedded config, nothing to reload", why);
      return;
    }
    std::shared_ptr<const config::Config> next;
    try {
      next =
          config::with_discovered_endpoints(config::load_file(options_.config_path), discovered_);
    } catch (const config::ConfigError& e) {
      ++reload_failures_;
      spdlog::error("config reload ({}) failed; still serving the previous config:", why);
      for (const std::string& m : e.messages()) spdlog::error("{}", m);
      return;
    }
    if (!(next->admin.address == cfg_->admin.address)) {
      spdlog::warn("admin.address changes on restart only; admin stays on {}",
                   admin_->address().to_string());
    }
    if (!(next->access_log == cfg_->access_log)) {
      spdlog::warn("access_log changes on restart only; keeping the current access log");
    }
    std::set<std::string> keys;
    for (const auto& [key, section] : cfg_->sections) keys.insert(key);
    for (const auto& [key, section] : next->sections) keys.insert(key);
    for (const std::string& key : keys) {
      const config::Section* before = cfg_->section(key);
      const config::Section* after = next->section(key);
      if (before != nullptr && after != nullptr && *before == *after) continue;
      module::Module* m = nullptr;
      for (auto& candidate : modules_) {
        if (candidate->key() == key) m = candidate.get();
      }
      if (m == nullptr || after == nullptr || !m->reload(*after)) {
        spdlog::warn("{} changes on restart only; keeping the current {}", key, key);
      }
    }
    if (next->workers != cfg_->workers) {
      spdlog::warn("workers changes on restart only; keeping {}", server_->worker_count());
    }
    try {
      tls_.apply(*next);
      server_->reload(next);
    } catch (const std::runtime_error& e) {
      ++reload_failures_;
      spdlog::error("config reload ({}) failed; still serving the previous config: {}", why,
                    e.what());
      return;
    }
    const bool was_watching = cfg_->watch;
    {
      std::lock_guard lock(cfg_mutex_);
      cfg_ = next;
    }
    ++reloads_;
    spdlog::info("config reloaded ({}): {} listeners, {} clusters", why, cfg_->listeners.size(),
                 cfg_->clusters.size());
    for (const auto& [name, address] : server_->listener_addresses()) {
      spdlog::debug("listener {} on {}", name, address.to_string());
    }
    if (cfg_->watch && !was_watching) watch_config();
  }

  // Polls the config file once a second: a Kubernetes ConfigMap update swaps a
  // symlink, which stat() follows, so polling sees it where inotify on the
  // file would not.
  void watch_config() {
    if (options_.config_path.empty()) return;
    struct stat st {};
    if (::stat(options_.config_path.c_str(), &st) == 0) last_stat_ = st;
    schedule_watch();
  }

  void schedule_watch() {
    watch_timer_.expires_after(std::chrono::seconds(1));
    watch_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !cfg_->watch || shutting_down_) return;
      struct stat st {};
      if (::stat(options_.config_path.c_str(), &st) == 0 &&
          (st.st_mtim.tv_sec != last_stat_.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != last_stat_.st_mtim.tv_nsec || st.st_ino != last_stat_.st_ino ||
           st.st_size != last_stat_.st_size || st.st_dev != last_stat_.st_dev)) {
        last_stat_ = st;
        reload("config file changed");
      }
      schedule_watch();
    });
  }

  // Every metric, for /metrics and /stats.
  void collect(stats::MetricWriter& w) {
    store_.collect(w);
    upstream::CircuitBreaker::collect(w);
    filters::collect(w);
    stats::collect_self(w);
    std::vector<stats::AppSample> apps;
    if (app_) {
      apps.push_back({"app",
                      app_->running() ? stats::read_process_group(app_->pid()) : std::nullopt,
                      app_->restarts()});
    }
    for (const config::WatchedProcess& p : cfg_->metrics.processes) {
      std::optional<stats::ProcessUsage> usage;
      if (!p.cgroup.empty()) {
        usage = stats::read_cgroup(p.cgroup);
      } else if (auto pid = read_pid_file(p.pid_file)) {
        usage = stats::read_process(*pid);
      }
      apps.push_back({p.name, usage, std::nullopt});
    }
    stats::collect_apps(w, apps);
    upstream::collect_health(w, *cfg_);
    using stats::MetricType;
    w.family("sidecar_build_info", MetricType::kGauge, "The sidecar's version, as labels.");
    const stats::Label build[] = {{"version", options_.version}, {"revision", options_.revision}};
    w.sample(build, 1);
    w.family("sidecar_ready", MetricType::kGauge, "1 when /ready answers 200.");
    w.sample({}, ready() ? 1 : 0);
    w.family("sidecar_config_reloads_total", MetricType::kCounter, "Successful config reloads.");
    w.sample({}, static_cast<double>(reloads_));
    w.family("sidecar_config_reload_failures_total", MetricType::kCounter,
             "Config reloads rejected (invalid config, or an address that cannot be bound).");
    w.sample({}, static_cast<double>(reload_failures_));
    tls_.collect(w);
    for (const auto& m : modules_) m->collect(w);
    if (access_log_) {
      w.family("sidecar_access_log_write_errors_total", MetricType::kCounter,
               "Failed writes of access log lines (for example, a full disk).");
      w.sample({}, static_cast<double>(access_log_->write_errors()));
    }
  }

  void register_admin() {
    admin_->handle("GET", "/certs", [this](const admin::AdminRequest&, admin::AdminResponse& r) {
      r.body = tls_.certs_json() + "\n";
      r.content_type = "application/json";
    });
    admin_->handle("GET", "/healthz",
                   [](const admin::AdminRequest&, admin::AdminResponse& r) { r.body = "ok\n"; });
    admin_->handle(
        "GET", "/metrics", [this](const admin::AdminRequest& req, admin::AdminResponse& r) {
          const bool om = stats::TextWriter::wants_openmetrics(req.accept);
          r.body.reserve(last_scrape_size_ + last_scrape_size_ / 8 + 4096);
          stats::TextWriter w(r.body, om);
          collect(w);
          w.finish();
          last_scrape_size_ = r.body.size();
          r.content_type =
              om ? stats::TextWriter::kOpenMetricsContentType : stats::TextWriter::kTextContentType;
        });
    admin_->handle("GET", "/stats", [this](const admin::AdminRequest&, admin::AdminResponse& r) {
      stats::JsonWriter w(r.body);
      collect(w);
      w.finish();
      r.content_type = "application/json";
    });
    admin_->handle("GET", "/config", [this](const admin::AdminRequest&, admin::AdminResponse& r) {
      r.body = config::to_json(*cfg_);
      r.content_type = "application/json";
    });
    admin_->handle("GET", "/clusters", [this](const admin::AdminRequest&, admin::AdminResponse& r) {
      const auto totals = store_.endpoints();
      std::string& b = r.body;
      b = "{\"clusters\":[";
      for (size_t i = 0; i < cfg_->clusters.size(); ++i) {
        const config::Cluster& c = cfg_->clusters[i];
        if (i > 0) b += ',';
        b += "{\"name\":";
        core::append_json_string(b, c.name);
        b += ",\"endpoints\":[";
        for (size_t e = 0; e < c.endpoints.size(); ++e) {
          const std::string address = c.endpoints[e].to_string();
          if (e > 0) b += ',';
          b += "{\"address\":";
          core::append_json_string(b, address);
          b += fmt::format(",\"weight\":{},\"priority\":{}", c.endpoints[e].weight,
                           c.endpoints[e].priority);
          for (const auto& t : totals) {
            if (t.cluster != c.name || t.endpoint != address) continue;
            b += fmt::format(
                ",\"connections_active\":{},\"connections_idle\":{},\"pending_requests\":{},"
                "\"requests_active\":{},"
                "\"connections_total\":{},\"connect_failures\":{},\"connect_timeouts\":{},"
                "\"request_timeouts\":{},\"resets\":{},\"requests_total\":{},"
                "\"requests_5xx\":{}",
                t.connections_active, t.connections_idle, t.pending_requests, t.requests_active,
                t.connections_total, t.connect_failures, t.connect_timeouts, t.request_timeouts,
                t.resets, t.requests_total, t.requests_5xx);
          }
          upstream::append_endpoint_health_json(b, c, address);
          b += '}';
        }
        b += ']';
        upstream::append_cluster_health_json(b, c);
        b += '}';
      }
      b += "]}\n";
      r.content_type = "application/json";
    });
    // The cache filter's PURGE (docs/filters.md "cache"): ?prefix=/path.
    admin_->handle("POST", "/cache/purge",
                   [](const admin::AdminRequest& req, admin::AdminResponse& r) {
                     r.body = filters::cache::purge(req.query);
                     r.content_type = "application/json";
                   });
    admin_->handle("POST", "/logging", [](const admin::AdminRequest& req, admin::AdminResponse& r) {
      std::string level;
      const std::string_view q = req.query;
      if (q.starts_with("level=")) level = std::string(q.substr(6));
      if (!core::set_log_level(level)) {
        r.status = 400;
        r.body = "use POST /logging?level=LEVEL (trace, debug, info, warn, error, off)\n";
        return;
      }
      spdlog::info("log level set to {}", level);
      r.body = "log level: " + level + "\n";
    });
    admin_->handle("GET", "/ready", [this](const admin::AdminRequest&, admin::AdminResponse& r) {
      const bool ok = ready();
      r.status = ok ? 200 : 503;
      r.body = ok                            ? "ready\n"
               : shutting_down_ || draining_ ? "draining\n"
               : !started_                   ? "starting\n"
                                             : "the app is not ready\n";
    });
    admin_->handle("GET", "/listeners",
                   [this](const admin::AdminRequest&, admin::AdminResponse& r) {
                     std::string body = "[";
                     for (const auto& [name, address] : server_->listener_addresses()) {
                       if (body.size() > 1) body += ",";
                       body += "{\"name\":";
                       core::append_json_string(body, name);
                       body += fmt::format(R"(,"address":"{}"}})", address.to_string());
                     }
                     r.content_type = "application/json";
                     r.body = body + "]\n";
                   });
    admin_->handle("POST", "/drain", [this](const admin::AdminRequest&, admin::AdminResponse& r) {
      if (!draining_ && !shutting_down_) {
        draining_ = true;
        spdlog::info("POST /drain: not ready; inbound listeners stop accepting");
        server_->drain(config::Direction::kInbound, io_, cfg_->drain.timeout, [](bool clean) {
          spdlog::info("inbound listeners drained{}", clean ? "" : " (timeout)");
        });
      }
      r.body = "draining\n";
    });
    admin_->handle("POST", "/quit", [this](const admin::AdminRequest&, admin::AdminResponse& r) {
      shutdown("POST /quit", SIGTERM);
      r.body = "shutting down\n";
    });
  }

  void write_admin_address() {
    if (options_.admin_address_path.empty()) return;
    // Written to a temporary name and renamed: a reader never sees half of it.
    const std::string tmp = options_.admin_address_path + ".tmp";
    std::ofstream(tmp) << admin_->address().to_string() << "\n";
    std::rename(tmp.c_str(), options_.admin_address_path.c_str());
  }

  const RunOptions options_;
  std::shared_ptr<const config::Config> cfg_;  // the live config; written on the main thread
  mutable std::mutex cfg_mutex_;               // ... under this, for config()
  boost::asio::io_context io_;
  stats::Store store_;
  tls::Store tls_;
  std::unique_ptr<accesslog::Writer> access_log_;
  std::unique_ptr<proxy::Server> server_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<admin::Dashboard> dashboard_;  // GET /, /stream, /tap
  std::unique_ptr<supervisor::Supervisor> app_;
  std::unique_ptr<supervisor::ReadinessProbe> probe_;
  std::vector<std::unique_ptr<module::Module>> modules_;
  std::map<pid_t, std::function<void(int)>> commands_;  // commands run for modules
  // Endpoints found by discovery, by cluster: applied to every config published.
  std::map<std::string, std::vector<config::Address>> discovered_;
  // Children modules reap themselves (spawn_child), and their exit once the
  // main loop's reaper took it; under reap_mutex_, which the reaper holds.
  std::mutex reap_mutex_;
  std::map<pid_t, std::optional<std::pair<int, rusage>>> module_children_;
  // Subscribers to the app's output; fixed once the app starts, and shared
  // with the supervisor's output thread, which may outlive this object.
  std::mutex output_mutex_;
  std::shared_ptr<std::vector<module::AppOutputFn>> output_subscribers_ =
      std::make_shared<std::vector<module::AppOutputFn>>();
  boost::asio::signal_set signals_;
  boost::asio::steady_timer delay_timer_;
  boost::asio::steady_timer watch_timer_;
  struct stat last_stat_ {};
  bool started_ = false;
  bool shutting_down_ = false;
  bool draining_ = false;
  bool stopping_app_ = false;
  bool finishing_ = false;
  int app_signal_ = SIGTERM;
  int exit_code_ = kExitOk;
  uint64_t reloads_ = 0;
  uint64_t reload_failures_ = 0;
  size_t last_scrape_size_ = 0;  // to size the next scrape's buffer at once
};

}  // namespace

// Every HTTP filter and module kind this binary has.
static void register_builtin() {
  filters::register_builtin();
  static std::once_flag once;
  std::call_once(once, [] {
    tls::register_validator();
    sync::register_module();
    acme::register_module();
    logship::register_module();
    registry::register_module();
    tracing::register_module();
  });
}

int validate(const std::string& path) {
  register_builtin();
  try {
    config::load_file(path);
  } catch (const config::ConfigError& e) {
    print_errors(e);
    return kExitConfig;
  }
  std::printf("%s: ok\n", path.c_str());
  return kExitOk;
}

int run(const RunOptions& options) {
  register_builtin();
  std::shared_ptr<const config::Config> cfg;
  try {
    cfg = load(options.config_path);
  } catch (const config::ConfigError& e) {
    print_errors(e);
    return kExitConfig;
  }
  if (!core::init_logging(options.log_level)) {
    std::fprintf(stderr, "unknown log level '%s' (trace, debug, info, warn, error, off)\n",
                 options.log_level.c_str());
    return kExitConfig;
  }
  ::signal(SIGPIPE, SIG_IGN);
  Process process(options, std::move(cfg));
  return process.run();
}

}  // namespace sidecar::app
