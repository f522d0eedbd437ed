#include "upstream/health_checker.h"

#include <map>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/random.h"
#include "upstream/dns_discovery.h"
#include "upstream/health.h"
#include "upstream/health_session.h"
#include "upstream/outlier.h"

namespace sidecar::upstream {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct HealthChecker::Impl : std::enable_shared_from_this<HealthChecker::Impl> {
  explicit Impl(TlsLookup lookup) : tls(std::move(lookup)) {}
  using Publish = HealthChecker::Publish;

  struct ClusterState {
    config::Cluster config;
    std::map<std::string, std::shared_ptr<HealthSession>> sessions;  // "address#check index"
    std::unique_ptr<asio::steady_timer> outlier_timer;
    std::chrono::milliseconds outlier_interval{0};
    std::unique_ptr<DnsDiscoverer> dns;
  };

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  TlsLookup tls;
  Publish publish;       // set before start
  bool started = false;  // the thread runs
  bool wanted = false;   // start() was called
  bool needed = false;   // a config had a cluster with work for the thread

  void start_thread();
  // Health thread only.
  std::map<std::string, ClusterState> clusters;

  void apply(std::vector<config::Cluster> next,
             std::map<std::string, std::shared_ptr<tls::ClientSlot>> slots);
  void schedule_outlier(const std::string& name, ClusterState& state);
  void stop_all();
};

namespace {

bool has_active_checks(const config::Cluster& c) { return !c.health_checks.empty(); }

}  // namespace

void HealthChecker::Impl::apply(std::vector<config::Cluster> next,
                                std::map<std::string, std::shared_ptr<tls::ClientSlot>> slots) {
  std::map<std::string, ClusterState> kept;
  for (config::Cluster& c : next) {
    ClusterState state;
    if (auto it = clusters.find(c.name); it != clusters.end()) state = std::move(it->second);
    ClusterHealth& health = HealthRegistry::instance().cluster(c.name);
    std::map<std::string, std::shared_ptr<HealthSession>> sessions;
    std::shared_ptr<tls::ClientSlot> slot = slots[c.name];
    for (const config::Address& a : c.endpoints) {
      if (a.port == 0) continue;  // a discovered cluster's placeholder: nothing to check
      const std::string address = a.to_string();
      for (size_t i = 0; i < c.health_checks.size(); ++i) {
        const std::string key = address + "#" + std::to_string(i);
        auto old = state.sessions.find(key);
        if (old != state.sessions.end() && old->second->same(c.health_checks[i], slot)) {
          old->second->set_uneject(c.outlier_detection.successful_active_health_check_uneject_host);
          sessions[key] = std::move(old->second);
          state.sessions.erase(old);
          continue;
        }
        HealthSession::Target t;
        t.cluster = c.name;
        t.address = address;
        boost::system::error_code ec;
        t.endpoint = tcp::endpoint(asio::ip::make_address(a.host, ec), a.port);
        if (ec) continue;
        t.host_name = a.hostname.empty() ? a.host : a.hostname;
        t.protocol = c.protocol;
        auto s = std::make_shared<HealthSession>(io, std::move(t), c.health_checks[i], slot,
                                                 health.endpoint(address));
        s->set_uneject(c.outlier_detection.successful_active_health_check_uneject_host);
        s->start();
        sessions[key] = std::move(s);
      }
    }
    for (auto& [key, s] : state.sessions) s->stop();
    state.sessions = std::move(sessions);
    if (!c.discovery.dns.enabled) {
      state.dns.reset();
    } else if (!state.dns || !(state.dns->config() == c.discovery.dns)) {
      state.dns = std::make_unique<DnsDiscoverer>(
          io, c.name, c.discovery.dns,
          [impl = weak_from_this()](const std::string& cluster,
                                    std::vector<config::Address> endpoints) {
            if (auto self = impl.lock(); self && self->publish) {
              self->publish(cluster, std::move(endpoints));
            }
          });
      state.dns->start();
    }
    state.config = std::move(c);
    kept[state.config.name] = std::move(state);
  }
  for (auto& [name, state] : clusters) {
    for (auto& [key, s] : state.sessions) s->stop();
    if (state.outlier_timer) state.outlier_timer->cancel();
    if (state.dns) state.dns->stop();
  }
  clusters = std::move(kept);
  for (auto& [name, state] : clusters) {
    const auto& od = state.config.outlier_detection;
    if (!od.enabled) {
      if (state.outlier_timer) state.outlier_timer->cancel();
      state.outlier_timer.reset();
      continue;
    }
    if (state.outlier_timer && state.outlier_interval == od.interval) continue;
    if (state.outlier_timer) state.outlier_timer->cancel();
    state.outlier_timer = std::make_unique<asio::steady_timer>(io);
    state.outlier_interval = od.interval;
    schedule_outlier(name, state);
  }
}

void HealthChecker::Impl::schedule_outlier(const std::string& name, ClusterState& state) {
  asio::steady_timer* timer = state.outlier_timer.get();
  timer->expires_after(state.outlier_interval);
  timer->async_wait([self = shared_from_this(), name, timer](const boost::system::error_code& ec) {
    if (ec) return;
    auto it = self->clusters.find(name);
    if (it == self->clusters.end() || it->second.outlier_timer.get() != timer) return;
    ClusterHealth* health = HealthRegistry::instance().find(name);
    if (health != nullptr) {
      outlier::on_interval(*health, it->second.config.outlier_detection, HealthClock::now());
    }
    self->schedule_outlier(name, it->second);
  });
}

void HealthChecker::Impl::stop_all() {
  for (auto& [name, state] : clusters) {
    for (auto& [key, s] : state.sessions) s->stop();
    if (state.outlier_timer) state.outlier_timer->cancel();
    if (state.dns) state.dns->stop();
  }
  clusters.clear();
}

HealthChecker::HealthChecker(TlsLookup tls) : impl_(std::make_shared<Impl>(std::move(tls))) {}

HealthChecker::~HealthChecker() {
  stop(std::chrono::steady_clock::now() + std::chrono::seconds(1));
}

void HealthChecker::update(const config::Config& config) {
  std::vector<config::Cluster> clusters;
  std::map<std::string, std::shared_ptr<tls::ClientSlot>> slots;
  for (const config::Cluster& c : config.clusters) {
    std::vector<std::string> addresses;
    for (const config::Address& a : c.endpoints) addresses.push_back(a.to_string());
    HealthRegistry::instance().cluster(c.name).set_members(addresses, has_active_checks(c));
    if (!c.health_checks.empty() || c.outlier_detection.enabled || c.discovery.dns.enabled) {
      clusters.push_back(c);
      if (c.tls.enabled && impl_->tls) slots[c.name] = impl_->tls(c.name);
    }
  }
  if (!clusters.empty()) impl_->needed = true;
  // Weak: a checker never started must not keep itself alive through its queue.
  asio::post(impl_->io, [weak = std::weak_ptr<Impl>(impl_), clusters = std::move(clusters),
                         slots = std::move(slots)]() mutable {
    if (auto impl = weak.lock()) impl->apply(std::move(clusters), std::move(slots));
  });
  if (impl_->wanted && impl_->needed) impl_->start_thread();
}

void HealthChecker::set_discovery_sink(Publish publish) { impl_->publish = std::move(publish); }

void HealthChecker::start() {
  impl_->wanted = true;
  if (impl_->needed) impl_->start_thread();
}

// The thread exists only once a config has health checks, outlier detection
// or DNS discovery (a sidecar without them has no idle thread for it); it
// then runs the updates queued so far, in order, and stays until stop().
void HealthChecker::Impl::start_thread() {
  if (started) return;
  started = true;
  guard.emplace(io.get_executor());
  thread = std::thread([impl = shared_from_this()] {
    pthread_setname_np(pthread_self(), "health");
    impl->io.run();
  });
}

void HealthChecker::stop(std::chrono::steady_clock::time_point deadline) {
  impl_->wanted = false;
  if (!impl_->started) return;
  impl_->started = false;
  asio::post(impl_->io, [impl = impl_] {
    impl->stop_all();
    impl->guard.reset();
  });
  // Everything is asynchronous: the thread ends as soon as the closes ran.
  // Past the deadline it is stopped hard.
  while (!impl_->io.stopped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->io.restart();
}

}  // namespace sidecar::upstream
