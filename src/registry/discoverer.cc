#include "registry/discoverer.h"

#include <algorithm>
#include <condition_variable>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "config/loader.h"
#include "registry/etcd_client.h"

namespace sidecar::registry {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {
// A watch is reopened (from its revision) at least this often, so a
// connection that died silently is noticed.
constexpr milliseconds kMaxWatch(60'000);
}  // namespace

std::vector<config::Address> select_endpoints(const std::vector<etcd::Instance>& instances,
                                              const std::vector<std::string>& tags) {
  std::vector<config::Address> out;
  for (const etcd::Instance& in : instances) {
    bool all = true;
    for (const std::string& t : tags) {
      all = all && std::find(in.tags.begin(), in.tags.end(), t) != in.tags.end();
    }
    if (!all) continue;
    const bool v6 = in.address.find(':') != std::string::npos;
    const std::string text = v6 ? fmt::format("[{}]:{}", in.address, in.port)
                                : fmt::format("{}:{}", in.address, in.port);
    std::string why;
    if (auto a = config::parse_address(text, why)) {
      a->weight = in.weight;  // the cluster's balancer honours it (docs/resilience.md)
      out.push_back(*a);
    }
  }
  std::sort(out.begin(), out.end(), [](const config::Address& a, const config::Address& b) {
    return std::tie(a.host, a.port) < std::tie(b.host, b.port);
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

struct Discoverer::State {
  State(EtcdSettings e, const config::Cluster& c, module::Host& h)
      : etcd(std::move(e)),
        cluster(c.name),
        tags(c.discovery.tags),
        prefix(etcd.prefix + c.discovery.etcd_service + "/"),
        host(h),
        client(etcd, stop) {
    st.cluster = cluster;
    st.service = c.discovery.etcd_service;
  }

  const EtcdSettings etcd;
  const std::string cluster;
  const std::vector<std::string> tags;
  const std::string prefix;
  module::Host& host;
  std::atomic<bool> stop{false};
  EtcdClient client;

  std::map<std::string, etcd::Instance> instances;  // by key; the thread's own
  bool have = false;                                // instances hold a full read
  bool published = false;
  std::vector<config::Address> last;

  mutable std::mutex mutex;  // guards what follows
  std::condition_variable wake;
  bool done = false;
  DiscoveryStatus st;
  Clock::time_point last_contact = Clock::now();

  void run();
  bool read_all();
  void apply(const etcd::KeyValue& kv, bool is_delete);
  void publish();
  void contact(bool watching) {
    std::lock_guard lock(mutex);
    last_contact = Clock::now();
    st.watching = watching;
    st.last_error.clear();
  }
  void failed(const std::string& why) {
    std::lock_guard lock(mutex);
    st.watching = false;
    st.last_error = why;
  }
  void sleep(milliseconds d) {
    std::unique_lock lock(mutex);
    wake.wait_for(lock, d, [&] { return stop.load(); });
  }
};

void Discoverer::State::apply(const etcd::KeyValue& kv, bool is_delete) {
  if (is_delete) {
    instances.erase(kv.key);
    return;
  }
  etcd::Instance in;
  if (etcd::decode_instance(kv.value, in)) {
    instances[kv.key] = std::move(in);
  } else {
    // Not ours to judge: another tool's value. Ignored, said once per put.
    spdlog::warn("registry: {} in etcd is not an instance document; ignored", kv.key);
    instances.erase(kv.key);
  }
}

void Discoverer::State::publish() {
  std::vector<etcd::Instance> list;
  list.reserve(instances.size());
  for (const auto& [key, in] : instances) list.push_back(in);
  std::vector<config::Address> next = select_endpoints(list, tags);
  if (published && next == last) return;
  if (stop.load()) return;  // the Host may be going away
  published = true;
  last = next;
  std::vector<std::string> names;
  for (const config::Address& a : next) names.push_back(a.to_string());
  spdlog::info("registry: cluster {} now has {} endpoint{} from etcd{}{}", cluster, next.size(),
               next.size() == 1 ? "" : "s", next.empty() ? "" : ": ", fmt::join(names, ", "));
  {
    std::lock_guard lock(mutex);
    st.endpoints = names;
    ++st.updates;
  }
  host.update_cluster_endpoints(cluster, std::move(next));
}

bool Discoverer::State::read_all() {
  const auto r =
      client.call("/v3/kv/range", etcd::range_body(prefix, etcd::prefix_range_end(prefix)));
  etcd::RangeResult range;
  etcd::Error e;
  if (!r.ok() || !etcd::parse_range(r.body, range, e)) {
    failed("range: " + (r.ok() ? std::string("unexpected answer") : r.describe()));
    return false;
  }
  instances.clear();
  for (const etcd::KeyValue& kv : range.kvs) apply(kv, false);
  have = true;
  {
    std::lock_guard lock(mutex);
    st.revision = range.revision;
    ++st.full_reads;
  }
  contact(false);
  publish();
  return true;
}

void Discoverer::State::run() {
  milliseconds backoff(250);
  while (!stop.load()) {
    if (!have && !read_all()) {
      sleep(backoff);
      backoff = std::min(backoff * 2, milliseconds(5000));
      continue;
    }
    int64_t revision;
    {
      std::lock_guard lock(mutex);
      revision = st.revision;
    }
    bool compacted = false;
    std::string error;
    const bool ok = client.stream(
        "/v3/watch", etcd::watch_create_body(prefix, etcd::prefix_range_end(prefix), revision + 1),
        [&](std::string_view line) {
          etcd::WatchResponse w;
          etcd::Error e;
          if (!etcd::parse_watch(line, w, e)) {
            error = e.message.empty() ? "unexpected watch message" : "watch: " + e.message;
            return false;
          }
          if (w.compact_revision > 0 || w.canceled) {
            compacted = true;  // the revision is gone: read everything again
            error = w.cancel_reason.empty() ? "watch canceled (compacted)" : w.cancel_reason;
            return false;
          }
          for (const etcd::WatchEvent& ev : w.events) apply(ev.kv, ev.is_delete);
          {
            std::lock_guard lock(mutex);
            // Events only: a header may be ahead of events still to come.
            for (const etcd::WatchEvent& ev : w.events) {
              st.revision = std::max(st.revision, ev.kv.mod_revision);
            }
          }
          contact(true);
          if (!w.events.empty()) publish();
          return !stop.load();
        },
        kMaxWatch, error);
    if (compacted) {
      spdlog::info("registry: watch of {} restarts from a full read ({})", prefix, error);
      have = false;
      continue;
    }
    if (!ok || !error.empty()) {
      failed(error);
      spdlog::warn("registry: watch of {}: {}; keeping the {} known endpoints", prefix, error,
                   last.size());
      sleep(backoff);
      backoff = std::min(backoff * 2, milliseconds(5000));
      continue;
    }
    backoff = milliseconds(250);
    contact(false);  // the stream ended cleanly (or ran its time): reopened at once
  }
  std::lock_guard lock(mutex);
  st.watching = false;
  done = true;
  wake.notify_all();
}

Discoverer::Discoverer(EtcdSettings etcd, const config::Cluster& cluster, module::Host& host)
    : state_(std::make_shared<State>(std::move(etcd), cluster, host)) {}

Discoverer::~Discoverer() {
  if (thread_.joinable()) stop(Clock::now() + std::chrono::seconds(1));
}

void Discoverer::start() {
  thread_ = std::thread([s = state_] { s->run(); });
}

void Discoverer::stop(Clock::time_point deadline) {
  {
    std::lock_guard lock(state_->mutex);
    state_->stop = true;
    state_->wake.notify_all();
  }
  if (!thread_.joinable()) return;
  std::unique_lock lock(state_->mutex);
  const bool done = state_->wake.wait_until(lock, deadline, [&] { return state_->done; });
  lock.unlock();
  if (done) {
    thread_.join();
  } else {
    thread_.detach();
  }
}

DiscoveryStatus Discoverer::status() const {
  std::lock_guard lock(state_->mutex);
  DiscoveryStatus s = state_->st;
  s.stale_seconds =
      s.watching ? 0 : std::chrono::duration<double>(Clock::now() - state_->last_contact).count();
  return s;
}

}  // namespace sidecar::registry
