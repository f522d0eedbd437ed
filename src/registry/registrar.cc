#include "registry/registrar.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "registry/etcd_json.h"

namespace sidecar::registry {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

std::string now_rfc3339() {
  const time_t t = ::time(nullptr);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string first_address() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return {};
  std::string v4, v6;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET && v4.empty()) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
      ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
      v4 = buf;
    } else if (a->ifa_addr->sa_family == AF_INET6 && v6.empty()) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) || IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) {
        continue;
      }
      ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
      v6 = buf;
    }
  }
  ::freeifaddrs(list);
  return !v4.empty() ? v4 : v6;
}

}  // namespace

ServiceSettings with_defaults(ServiceSettings s, const config::Config& config, std::string& why) {
  if (s.instance_id.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof(host) - 1) == 0) s.instance_id = host;
    if (s.instance_id.empty() || s.instance_id.find('/') != std::string::npos) {
      why = "registry.service.instance_id: no usable host name; set it";
      return s;
    }
  }
  if (s.address.empty()) {
    s.address = first_address();
    if (s.address.empty()) {
      why = "registry.service.address: no non-loopback address found; set it";
      return s;
    }
  }
  if (s.port == 0) {
    for (const config::Listener& l : config.listeners) {
      if (l.direction == config::Direction::kInbound && l.address.port != 0) {
        s.port = l.address.port;
        break;
      }
    }
    if (s.port == 0) {
      why = "registry.service.port: no inbound listener with a fixed port; set it";
      return s;
    }
  }
  return s;
}

struct Registrar::State {
  State(EtcdSettings e, ServiceSettings s, module::Host& h)
      : etcd(std::move(e)),
        service(std::move(s)),
        host(h),
        client(etcd, stop),
        watch_client(etcd, stop) {
    key = etcd.prefix + service.name + "/" + service.instance_id;
    ttl_seconds = std::max<int64_t>(
        2, std::chrono::duration_cast<std::chrono::seconds>(etcd.ttl + milliseconds(999)).count());
  }

  const EtcdSettings etcd;
  const ServiceSettings service;
  module::Host& host;
  std::atomic<bool> stop{false};
  EtcdClient client;
  EtcdClient watch_client;  // the own key's watch stream (its own connection)
  std::string key;
  int64_t ttl_seconds;

  std::mutex mutex;  // guards what follows
  std::condition_variable wake;
  bool shutdown = false;  // deregister and stay so
  bool done = false;      // the thread has returned
  bool watcher_done = false;
  bool key_suspect = false;  // the watch saw the own key deleted or replaced
  RegistrarStatus st;
  Clock::time_point last_keepalive{};  // last lease refresh etcd confirmed
  int64_t lease_ttl = 0;               // as etcd said then

  void set(const std::function<void(RegistrarStatus&)>& fn) {
    std::lock_guard lock(mutex);
    fn(st);
    st.endpoint = client.endpoint();
  }

  void run();
  bool put_key(int64_t lease);
  bool register_now(bool again);
  void revoke();
  bool take_suspect() {
    std::lock_guard lock(mutex);
    const bool s = key_suspect;
    key_suspect = false;
    return s;
  }
  // Refreshes the lease; false when it is gone (register again).
  enum class Keepalive { kOk, kFailed, kLost };
  Keepalive keepalive();
  void check_key(int64_t lease);
  // Watches the own key while registered; a delete or a put by someone else
  // sets key_suspect and wakes run(), which checks and puts it back.
  void watch_own_key();
};

bool Registrar::State::put_key(int64_t lease) {
  etcd::Instance in;
  in.address = service.address;
  in.port = service.port;
  in.tags = service.tags;
  in.metadata = service.metadata;
  in.weight = service.weight;
  in.started_at = now_rfc3339();
  const std::string value = etcd::encode_instance(in);
  const auto r = client.call("/v3/kv/put", etcd::put_body(key, value, lease));
  if (!r.ok()) {
    set([&](RegistrarStatus& s) { s.last_error = "put: " + r.describe(); });
    return false;
  }
  set([&](RegistrarStatus& s) { s.value = value; });
  return true;
}

bool Registrar::State::register_now(bool again) {
  const auto r = client.call("/v3/lease/grant", etcd::lease_grant_body(ttl_seconds));
  etcd::LeaseResult lease;
  etcd::Error e;
  if (!r.ok() || !etcd::parse_lease(r.body, lease, e) || lease.id == 0) {
    set([&](RegistrarStatus& s) {
      s.state = "failing";
      s.last_error = "lease grant: " + r.describe();
    });
    return false;
  }
  if (!put_key(lease.id)) {
    client.call("/v3/lease/revoke", etcd::lease_id_body(lease.id));
    set([&](RegistrarStatus& s) { s.state = "failing"; });
    return false;
  }
  {
    std::lock_guard lock(mutex);
    last_keepalive = Clock::now();
    lease_ttl = lease.ttl;
    st.state = "registered";
    st.registered = true;
    st.lease_id = lease.id;
    ++st.registrations;
    if (again) ++st.reregistrations;
    st.last_error.clear();
    st.endpoint = client.endpoint();
  }
  spdlog::info("registry: registered {} (lease {:x}, ttl {}s) on {}", key, lease.id, lease.ttl,
               client.endpoint());
  return true;
}

void Registrar::State::revoke() {
  int64_t id;
  {
    std::lock_guard lock(mutex);
    id = st.lease_id;
  }
  if (id == 0) return;
  const auto r = client.call("/v3/lease/revoke", etcd::lease_id_body(id));
  // Revoked, or already gone: either way the key is not there any more. A
  // failure leaves the key to expire with its lease.
  const bool gone = r.ok() || r.error.code == etcd::kNotFound;
  {
    std::lock_guard lock(mutex);
    st.registered = false;
    st.lease_id = 0;
    st.ttl_left_seconds = 0;
    if (gone) ++st.deregistrations;
    if (!gone) st.last_error = "revoke: " + r.describe();
  }
  if (gone) {
    spdlog::info("registry: deregistered {} (lease revoked)", key);
  } else {
    spdlog::warn("registry: could not revoke the lease of {} ({}); it expires in {}s at most", key,
                 r.describe(), ttl_seconds);
  }
}

Registrar::State::Keepalive Registrar::State::keepalive() {
  int64_t id;
  {
    std::lock_guard lock(mutex);
    id = st.lease_id;
  }
  const auto r = client.call("/v3/lease/keepalive", etcd::lease_id_body(id));
  etcd::LeaseResult lease;
  etcd::Error e;
  if (r.ok() && etcd::parse_lease(r.body, lease, e)) {
    if (lease.ttl <= 0) return Keepalive::kLost;  // etcd#14189: a dead lease answers TTL 0
    std::lock_guard lock(mutex);
    last_keepalive = Clock::now();
    lease_ttl = lease.ttl;
    st.endpoint = client.endpoint();
    return Keepalive::kOk;
  }
  if (r.error.code == etcd::kNotFound || (r.ok() && e.code == etcd::kNotFound)) {
    return Keepalive::kLost;
  }
  {
    std::lock_guard lock(mutex);
    ++st.keepalive_failures;
    st.last_error = "keepalive: " + (r.ok() ? std::string("unexpected answer") : r.describe());
    st.state = "failing";
    // No confirmed refresh for a whole TTL: etcd has let the lease go.
    if (Clock::now() - last_keepalive >= std::chrono::seconds(lease_ttl)) return Keepalive::kLost;
  }
  return Keepalive::kFailed;
}

void Registrar::State::check_key(int64_t lease) {
  const auto r = client.call("/v3/kv/range", etcd::range_body(key, ""));
  etcd::RangeResult range;
  etcd::Error e;
  if (!r.ok() || !etcd::parse_range(r.body, range, e)) return;  // next time
  if (!range.kvs.empty() && range.kvs[0].lease == lease) return;
  spdlog::warn("registry: {} was deleted or replaced by someone else; putting it back", key);
  if (put_key(lease)) {
    std::lock_guard lock(mutex);
    ++st.key_restores;
  }
}

void Registrar::State::watch_own_key() {
  while (!stop.load()) {
    int64_t lease = 0;
    {
      std::unique_lock lock(mutex);
      wake.wait_for(lock, milliseconds(500), [&] { return stop.load() || st.registered; });
      if (stop.load()) break;
      if (!st.registered) continue;
      lease = st.lease_id;
    }
    std::string error;
    const bool ok = watch_client.stream(
        "/v3/watch", etcd::watch_create_body(key, "", 0),
        [&](std::string_view line) {
          etcd::WatchResponse w;
          etcd::Error e;
          if (!etcd::parse_watch(line, w, e) || w.canceled) return false;
          for (const etcd::WatchEvent& ev : w.events) {
            if (ev.is_delete || ev.kv.lease != lease) {
              std::lock_guard lock(mutex);
              key_suspect = true;
              wake.notify_all();
            }
          }
          std::lock_guard lock(mutex);
          // A new lease (registered again): watch with the new one.
          return !stop.load() && st.registered && st.lease_id == lease;
        },
        std::chrono::minutes(1), error);
    if (!ok && !stop.load()) {
      // etcd unreachable: the keepalive path reports it; try again shortly.
      std::unique_lock lock(mutex);
      wake.wait_for(lock, std::chrono::seconds(1), [&] { return stop.load(); });
    }
  }
  std::lock_guard lock(mutex);
  watcher_done = true;
  wake.notify_all();
}

void Registrar::State::run() {
  const milliseconds period = std::max<milliseconds>(
      milliseconds(500), std::chrono::duration_cast<milliseconds>(etcd.ttl) / 3);
  milliseconds backoff(500);
  Clock::time_point next_keepalive{};
  bool lost = false;  // the next registration replaces a lost one
  for (;;) {
    bool want;
    {
      std::lock_guard lock(mutex);
      if (stop) break;
      want = !shutdown;
    }
    // Registered only while /ready says 200 (asks the main thread).
    if (want) want = host.process_ready();
    bool registered;
    {
      std::lock_guard lock(mutex);
      if (shutdown) want = false;
      registered = st.registered;
      if (!want && !registered) st.state = shutdown ? "stopped" : "waiting_ready";
    }
    milliseconds wait = milliseconds(500);  // how often readiness is looked at
    if (want && !registered) {
      if (register_now(lost)) {
        lost = false;
        backoff = milliseconds(500);
        next_keepalive = Clock::now() + period;
      } else {
        wait = backoff;
        backoff = std::min(backoff * 2, period);
      }
    } else if (!want && registered) {
      revoke();
      wake.notify_all();
    } else if (registered && take_suspect()) {
      int64_t lease;
      {
        std::lock_guard lock(mutex);
        lease = st.lease_id;
      }
      check_key(lease);
    } else if (registered && Clock::now() >= next_keepalive) {
      int64_t lease;
      {
        std::lock_guard lock(mutex);
        lease = st.lease_id;
      }
      switch (keepalive()) {
        case Keepalive::kOk:
          backoff = milliseconds(500);
          next_keepalive = Clock::now() + period;
          check_key(lease);
          {
            std::lock_guard lock(mutex);
            st.state = "registered";
            st.last_error.clear();
          }
          break;
        case Keepalive::kFailed:
          next_keepalive = Clock::now() + backoff;
          backoff = std::min(backoff * 2, period);
          break;
        case Keepalive::kLost: {
          spdlog::warn("registry: the lease of {} is gone; registering again", key);
          std::lock_guard lock(mutex);
          st.registered = false;
          st.lease_id = 0;
          lost = true;
          continue;  // at once
        }
      }
    }
    std::unique_lock lock(mutex);
    if (st.registered) {
      st.ttl_left_seconds =
          std::max(0.0, double(lease_ttl) -
                            std::chrono::duration<double>(Clock::now() - last_keepalive).count());
      if (want) {
        wait = std::min(wait, std::chrono::duration_cast<milliseconds>(
                                  std::max(next_keepalive - Clock::now(), Clock::duration(0))));
      }
    }
    wake.wait_for(lock, wait, [&] {
      return stop.load() || (shutdown && st.registered) || (key_suspect && st.registered);
    });
  }
  std::lock_guard lock(mutex);
  st.state = "stopped";
  done = true;
  wake.notify_all();
}

Registrar::Registrar(EtcdSettings etcd, ServiceSettings service, module::Host& host)
    : state_(std::make_shared<State>(std::move(etcd), std::move(service), host)) {
  state_->st.key = state_->key;
}

Registrar::~Registrar() {
  if (thread_.joinable() || watcher_.joinable()) stop(Clock::now() + std::chrono::seconds(1));
}

void Registrar::start() {
  thread_ = std::thread([s = state_] { s->run(); });
  watcher_ = std::thread([s = state_] { s->watch_own_key(); });
}

void Registrar::deregister(milliseconds timeout) {
  std::unique_lock lock(state_->mutex);
  state_->shutdown = true;
  state_->wake.notify_all();
  state_->wake.wait_for(lock, timeout, [&] { return !state_->st.registered || state_->done; });
}

void Registrar::stop(Clock::time_point deadline) {
  {
    std::lock_guard lock(state_->mutex);
    state_->shutdown = true;
    state_->stop = true;
    state_->wake.notify_all();
  }
  if (!thread_.joinable()) return;
  std::unique_lock lock(state_->mutex);
  const bool done = state_->wake.wait_until(lock, deadline, [&] { return state_->done; });
  const bool watcher_done =
      state_->wake.wait_until(lock, deadline, [&] { return state_->watcher_done; });
  lock.unlock();
  // A transfer still running ends by its timeout; the state is shared.
  if (done) {
    thread_.join();
  } else {
    thread_.detach();
  }
  if (watcher_.joinable()) {
    if (watcher_done) {
      watcher_.join();
    } else {
      watcher_.detach();
    }
  }
}

RegistrarStatus Registrar::status() const {
  std::lock_guard lock(state_->mutex);
  RegistrarStatus s = state_->st;
  s.endpoint = state_->client.endpoint();
  s.authentications = state_->client.authentications();
  return s;
}

}  // namespace sidecar::registry
