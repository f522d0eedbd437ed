#include "upstream/dns_discovery.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "upstream/health.h"

namespace sidecar::upstream {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto kMinTtlRefresh = std::chrono::seconds(5);  // Envoy's dns_min_refresh_rate

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

bool is_ip_literal(const std::string& host) {
  unsigned char raw[16];
  return inet_pton(AF_INET, host.c_str(), raw) == 1 || inet_pton(AF_INET6, host.c_str(), raw) == 1;
}

}  // namespace

struct DnsDiscoverer::State : std::enable_shared_from_this<DnsDiscoverer::State> {
  struct Watch {
    explicit Watch(asio::io_context& io, int fd) : descriptor(io, fd) {}
    asio::posix::stream_descriptor descriptor;
    bool read = false, write = false;
    bool reading = false, writing = false;
  };
  struct Target {
    config::DnsDiscovery::Target config;
    std::vector<config::Address> answer;
    bool answered = false;
    int ttl = -1;  // seconds, of the last answer
  };

  asio::io_context& io;
  const std::string cluster;
  const config::DnsDiscovery config;
  Publish publish;
  ClusterHealth& health;
  ares_channel channel = nullptr;
  std::map<int, std::shared_ptr<Watch>> watches;
  asio::steady_timer refresh_timer;
  asio::steady_timer ares_timer;
  std::vector<Target> targets;
  size_t outstanding = 0;
  bool stopped = false;
  bool published_once = false;
  std::vector<config::Address> published;

  State(asio::io_context& io, std::string cluster, config::DnsDiscovery config, Publish publish)
      : io(io),
        cluster(std::move(cluster)),
        config(std::move(config)),
        publish(std::move(publish)),
        health(HealthRegistry::instance().cluster(this->cluster)),
        refresh_timer(io),
        ares_timer(io) {
    for (const auto& t : this->config.targets) targets.push_back(Target{t, {}, false, -1});
  }

  ~State() { destroy_channel(); }

  void destroy_channel() {
    if (channel != nullptr) {
      ares_channel c = channel;
      channel = nullptr;
      ares_destroy(c);  // pending callbacks run with ARES_EDESTRUCTION
    }
    for (auto& [fd, w] : watches) {
      error_code ec;
      w->descriptor.cancel(ec);
      w->descriptor.release();  // c-ares owns and closes the socket
    }
    watches.clear();
  }

  bool init_channel() {
    init_library();
    ares_options options{};
    options.sock_state_cb = &State::on_sock_state;
    options.sock_state_cb_data = this;
    options.timeout = 1000;  // ms per try
    options.tries = 2;
    const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (int rc = ares_init_options(&channel, &options, mask); rc != ARES_SUCCESS) {
      spdlog::error("dns discovery of cluster {}: {}", cluster, ares_strerror(rc));
      channel = nullptr;
      return false;
    }
    if (!config.resolvers.empty()) {
      std::string csv;
      for (const std::string& r : config.resolvers) {
        if (!csv.empty()) csv += ',';
        csv += r;
      }
      if (int rc = ares_set_servers_ports_csv(channel, csv.c_str()); rc != ARES_SUCCESS) {
        spdlog::error("dns discovery of cluster {}: resolvers {}: {}", cluster, csv,
                      ares_strerror(rc));
      }
    }
    return true;
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* s = static_cast<State*>(data);
    if (!readable && !writable) {
      if (auto it = s->watches.find(fd); it != s->watches.end()) {
        error_code ec;
        it->second->descriptor.cancel(ec);
        it->second->descriptor.release();
        s->watches.erase(it);
      }
      return;
    }
    auto& w = s->watches[fd];
    if (!w) w = std::make_shared<Watch>(s->io, fd);
    w->read = readable != 0;
    w->write = writable != 0;
    s->arm(fd, w);
  }

  void arm(int fd, const std::shared_ptr<Watch>& w) {
    if (w->read && !w->reading) {
      w->reading = true;
      w->descriptor.async_wait(asio::posix::descriptor_base::wait_read,
                               [self = shared_from_this(), fd, w](const error_code& ec) {
                                 w->reading = false;
                                 if (ec || self->channel == nullptr) return;
                                 ares_process_fd(self->channel, fd, ARES_SOCKET_BAD);
                                 self->rearm(fd, w);
                               });
    }
    if (w->write && !w->writing) {
      w->writing = true;
      w->descriptor.async_wait(asio::posix::descriptor_base::wait_write,
                               [self = shared_from_this(), fd, w](const error_code& ec) {
                                 w->writing = false;
                                 if (ec || self->channel == nullptr) return;
                                 ares_process_fd(self->channel, ARES_SOCKET_BAD, fd);
                                 self->rearm(fd, w);
                               });
    }
  }

  // After processing, the watch may have been dropped (socket closed).
  void rearm(int fd, const std::shared_ptr<Watch>& w) {
    auto it = watches.find(fd);
    if (it != watches.end() && it->second == w) arm(fd, w);
    arm_timeout();
  }

  void arm_timeout() {
    if (channel == nullptr || outstanding == 0) return;
    timeval tv{};
    timeval* t = ares_timeout(channel, nullptr, &tv);
    if (t == nullptr) return;
    ares_timer.expires_after(std::chrono::seconds(t->tv_sec) +
                             std::chrono::microseconds(t->tv_usec));
    ares_timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->channel == nullptr) return;
      ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->arm_timeout();
    });
  }

  struct Query {
    std::weak_ptr<State> state;
    size_t index;
  };

  void resolve_all() {
    if (stopped) return;
    if (channel == nullptr && !init_channel()) {
      schedule(config.refresh_rate);
      return;
    }
    outstanding = targets.size();
    size_t issued = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
      Target& t = targets[i];
      if (is_ip_literal(t.config.host)) {
        t.answer = {
            config::Address{t.config.host, t.config.port, "", t.config.weight, t.config.priority}};
        t.answered = true;
        --outstanding;
        continue;
      }
      ares_addrinfo_hints hints{};
      hints.ai_family = config.lookup_family == config::DnsDiscovery::Family::kV4   ? AF_INET
                        : config.lookup_family == config::DnsDiscovery::Family::kV6 ? AF_INET6
                                                                                    : AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = ARES_AI_NOSORT;
      health.dns_resolutions.fetch_add(1, std::memory_order_relaxed);
      ++issued;
      ares_getaddrinfo(channel, t.config.host.c_str(), nullptr, &hints, &State::on_answer,
                       new Query{weak_from_this(), i});
    }
    // With a query out, its answer ends the round (possibly already did).
    if (issued == 0) {
      round_done();
    } else {
      arm_timeout();
    }
  }

  static void on_answer(void* arg, int status, int, ares_addrinfo* result) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    std::unique_ptr<ares_addrinfo, void (*)(ares_addrinfo*)> owned(result, ares_freeaddrinfo);
    auto s = q->state.lock();
    if (!s || s->stopped || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
    Target& t = s->targets[q->index];
    if (status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA) {
      std::vector<config::Address> answer;
      int ttl = -1;
      for (ares_addrinfo_node* n = result != nullptr ? result->nodes : nullptr; n != nullptr;
           n = n->ai_next) {
        char text[INET6_ADDRSTRLEN] = {};
        if (n->ai_family == AF_INET) {
          inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(n->ai_addr)->sin_addr, text,
                    sizeof text);
        } else if (n->ai_family == AF_INET6) {
          inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(n->ai_addr)->sin6_addr, text,
                    sizeof text);
        } else {
          continue;
        }
        answer.push_back(config::Address{text, t.config.port, t.config.host, t.config.weight,
                                         t.config.priority});
        if (ttl < 0 || n->ai_ttl < ttl) ttl = n->ai_ttl;
      }
      t.answer = std::move(answer);
      t.answered = true;
      t.ttl = ttl;
      if (status != ARES_SUCCESS) {
        spdlog::warn("dns discovery of cluster {}: {}: {} (no endpoints for it)", s->cluster,
                     t.config.host, ares_strerror(status));
      }
    } else {
      s->health.dns_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("dns discovery of cluster {}: {}: {} (keeping the last answer)", s->cluster,
                   t.config.host, ares_strerror(status));
    }
    if (--s->outstanding == 0) {
      // Not inside c-ares: the publish may destroy nothing, but stay clean.
      asio::post(s->io, [s] { s->round_done(); });
    }
  }

  void round_done() {
    if (stopped) return;
    bool all_answered = true;
    std::vector<config::Address> all;
    int min_ttl = -1;
    for (const Target& t : targets) {
      if (!t.answered) all_answered = false;
      all.insert(all.end(), t.answer.begin(), t.answer.end());
      if (t.ttl >= 0 && (min_ttl < 0 || t.ttl < min_ttl)) min_ttl = t.ttl;
    }
    std::sort(all.begin(), all.end(), [](const config::Address& a, const config::Address& b) {
      return std::tie(a.host, a.port, a.hostname) < std::tie(b.host, b.port, b.hostname);
    });
    all.erase(std::unique(all.begin(), all.end()), all.end());
    // Until every name has answered once, an empty union is not news.
    if ((all_answered || !all.empty()) && (!published_once || all != published)) {
      std::string list;
      for (const auto& a : all) list += (list.empty() ? "" : " ") + a.to_string();
      spdlog::info("dns discovery of cluster {}: endpoints {}", cluster,
                   list.empty() ? "(none)" : list);
      if (published_once) health.dns_updates.fetch_add(1, std::memory_order_relaxed);
      published_once = true;
      published = all;
      publish(cluster, all);
    }
    auto next = config.refresh_rate;
    if (config.respect_ttl && min_ttl >= 0) {
      next = std::max<std::chrono::milliseconds>(std::chrono::seconds(min_ttl), kMinTtlRefresh);
    }
    schedule(next);
  }

  void schedule(std::chrono::milliseconds delay) {
    if (stopped) return;
    refresh_timer.expires_after(delay);
    refresh_timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->stopped) return;
      self->resolve_all();
    });
  }
};

DnsDiscoverer::DnsDiscoverer(asio::io_context& io, std::string cluster, config::DnsDiscovery config,
                             Publish publish)
    : state_(
          std::make_shared<State>(io, std::move(cluster), std::move(config), std::move(publish))) {}

DnsDiscoverer::~DnsDiscoverer() { stop(); }

const config::DnsDiscovery& DnsDiscoverer::config() const { return state_->config; }

void DnsDiscoverer::start() { state_->resolve_all(); }

void DnsDiscoverer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->refresh_timer.cancel();
  state_->ares_timer.cancel();
  state_->destroy_channel();
}

}  // namespace sidecar::upstream
