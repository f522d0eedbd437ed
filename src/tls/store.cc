#include "tls/store.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/registry.h"
#include "core/file_version.h"
#include "core/json.h"
#include "stats/metric_writer.h"

namespace sidecar::tls {
namespace {

struct Stamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const Stamp&) const = default;
};

// How long files must stay unchanged before a rebuild failure counts.
constexpr std::chrono::milliseconds kSettle{150};

Stamp stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size,
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string rfc3339(int64_t seconds) {
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void append_strings(std::string& b, const std::vector<std::string>& v) {
  b += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) b += ',';
    core::append_json_string(b, v[i]);
  }
  b += ']';
}

}  // namespace

struct Store::Entry {
  bool server = true;
  std::string name;
  config::ServerTls server_config;
  config::ClientTls client_config;
  std::shared_ptr<ServerSlot> server_slot;
  std::shared_ptr<ClientSlot> client_slot;
  std::shared_ptr<void> tickets;
  std::optional<PemPair> provided;
  std::map<std::string, Stamp> stamps;  // the files, as last read
  // The files as they were when a rebuild first failed: a writer may be
  // between the key and the certificate, so a failure counts only when the
  // same files fail again after the settle time.
  std::map<std::string, Stamp> failed_stamps;
  std::string content;  // what they held: rebuild only on a change
  std::vector<CertificateInfo> in_use;
  uint64_t reloads = 0, failures = 0;
  bool built = false;

  std::vector<std::string> files() const {
    std::vector<std::string> f;
    if (server) {
      for (const auto& c : server_config.certificates) {
        f.push_back(c.cert);
        f.push_back(c.key);
      }
      if (!server_config.client_ca.empty()) f.push_back(server_config.client_ca);
    } else {
      if (!client_config.cert.empty()) {
        f.push_back(client_config.cert);
        f.push_back(client_config.key);
      }
      if (client_config.ca != "system") f.push_back(client_config.ca);
    }
    return f;
  }
  std::string label() const { return fmt::format("{} {}", server ? "listener" : "cluster", name); }
};

struct Store::Watcher {
  explicit Watcher(boost::asio::io_context& io)
      : fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)), stream(io), poll(io), debounce(io) {
    if (fd >= 0) stream.assign(fd);
  }
  int fd;
  boost::asio::posix::stream_descriptor stream;
  boost::asio::steady_timer poll;
  boost::asio::steady_timer debounce;
  std::set<std::string> dirs;
  bool reading = false;
  bool check_pending = false;
};

Store::Store(boost::asio::io_context& io) : io_(io), watcher_(std::make_unique<Watcher>(io)) {}

Store::~Store() {
  boost::system::error_code ec;
  watcher_->poll.cancel();
  watcher_->debounce.cancel();
  watcher_->stream.close(ec);
}

void Store::apply(const config::Config& config) {
  std::map<std::string, std::unique_ptr<Entry>> next;
  for (const config::Listener& l : config.listeners) {
    if (!l.tls.enabled) continue;
    const std::string key = "listener/" + l.name;
    auto e = std::make_unique<Entry>();
    if (auto it = entries_.find(key); it != entries_.end()) {
      e->server_slot = it->second->server_slot;
      e->tickets = it->second->tickets;
      e->provided = it->second->provided;
      e->reloads = it->second->reloads;
      e->failures = it->second->failures;
    } else {
      e->server_slot = std::make_shared<ServerSlot>();
      e->tickets = library().new_ticket_keys();
    }
    e->server = true;
    e->name = l.name;
    e->server_config = l.tls;
    next[key] = std::move(e);
  }
  for (const config::Cluster& c : config.clusters) {
    if (!c.tls.enabled) continue;
    const std::string key = "cluster/" + c.name;
    auto e = std::make_unique<Entry>();
    if (auto it = entries_.find(key); it != entries_.end()) {
      e->client_slot = it->second->client_slot;
      e->reloads = it->second->reloads;
      e->failures = it->second->failures;
    } else {
      e->client_slot = std::make_shared<ClientSlot>();
    }
    e->server = false;
    e->name = c.name;
    e->client_config = c.tls;
    if (c.tls.insecure_skip_verify) {
      spdlog::warn(
          "cluster {}: tls.insecure_skip_verify is set: upstream certificates are NOT "
          "verified",
          c.name);
    }
    next[key] = std::move(e);
  }
  // Build everything before publishing anything: a failure changes nothing.
  for (auto& [key, e] : next) {
    try {
      build(*e);
    } catch (const std::exception& ex) {
      throw std::runtime_error(fmt::format("{}: {}", e->label(), ex.what()));
    }
  }
  for (auto& [key, e] : next) {
    for (const std::string& f : e->files()) watch(f);
  }
  entries_ = std::move(next);
  schedule_poll();
}

void Store::build(Entry& e) {
  std::map<std::string, Stamp> stamps;
  std::string content;
  std::map<std::string, std::string> text;
  for (const std::string& f : e.files()) {
    stamps[f] = stamp_of(f);
    if (!text.count(f) && !core::read_file(f, text[f])) {
      throw std::runtime_error(fmt::format("cannot read {}: {}", f, std::strerror(errno)));
    }
    content += f;
    content += '\0';
    content += text[f];
    content += '\0';
  }
  if (e.built && content == e.content && !e.provided) {
    e.stamps = std::move(stamps);
    return;
  }
  if (e.server) {
    std::vector<PemPair> certs;
    if (e.provided) certs.push_back(*e.provided);
    for (const auto& c : e.server_config.certificates) {
      certs.push_back({"file " + c.cert, text[c.cert], text[c.key]});
    }
    // ACME has not issued yet: a stand-in that no client will trust.
    if (certs.empty()) certs.push_back(library().self_signed({e.name}, 7));
    const std::string ca =
        e.server_config.client_ca.empty() ? std::string() : text[e.server_config.client_ca];
    BuiltServer built = library().build_server(e.server_config, certs, ca, e.tickets);
    e.server_slot->set(std::move(built.context));
    e.in_use = std::move(built.certificates);
  } else {
    std::optional<PemPair> client;
    if (!e.client_config.cert.empty()) {
      client = PemPair{"file " + e.client_config.cert, text[e.client_config.cert],
                       text[e.client_config.key]};
    }
    const std::string ca =
        e.client_config.ca == "system" ? std::string() : text[e.client_config.ca];
    BuiltClient built = library().build_client(e.client_config, client ? &*client : nullptr, ca);
    e.client_slot->set(std::move(built.context));
    e.in_use = std::move(built.certificates);
  }
  if (e.built) {
    ++e.reloads;
    for (const CertificateInfo& c : e.in_use) {
      spdlog::info("{}: certificate reloaded: {} serial {} valid until {}", e.label(), c.source,
                   c.serial, rfc3339(c.not_after));
    }
  }
  e.built = true;
  e.content = std::move(content);
  e.stamps = std::move(stamps);
}

void Store::check() {
  for (auto& [key, e] : entries_) {
    bool changed = false;
    for (const auto& [path, st] : e->stamps) changed = changed || !(stamp_of(path) == st);
    if (!changed) continue;
    std::map<std::string, Stamp> now;
    for (const auto& [path, st] : e->stamps) now[path] = stamp_of(path);
    try {
      build(*e);
      e->failed_stamps.clear();
    } catch (const std::exception& ex) {
      if (now != e->failed_stamps) {
        // First look at these files: maybe a write in progress. Look again.
        e->failed_stamps = std::move(now);
        schedule_check();
        continue;
      }
      ++e->failures;
      // Remember what was seen, so that one bad write is reported once.
      e->stamps = std::move(now);
      e->failed_stamps.clear();
      spdlog::error("{}: new certificate files rejected, still serving the previous ones: {}",
                    e->label(), ex.what());
    }
  }
}

void Store::provide(const std::string& listener, PemPair certificate) {
  auto it = entries_.find("listener/" + listener);
  if (it == entries_.end()) {
    spdlog::warn("no TLS listener {} for the certificate from {}", listener, certificate.source);
    return;
  }
  Entry& e = *it->second;
  e.provided = std::move(certificate);
  try {
    build(e);
  } catch (const std::exception& ex) {
    ++e.failures;
    spdlog::error("{}: certificate from {} rejected: {}", e.label(), e.provided->source, ex.what());
  }
}

void Store::watch(const std::string& path) {
  const std::string dir = dir_of(path);
  if (watcher_->fd < 0 || !watcher_->dirs.insert(dir).second) return;
  if (::inotify_add_watch(watcher_->fd, dir.c_str(),
                          IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_ATTRIB |
                              IN_MODIFY | IN_MOVED_FROM) < 0) {
    spdlog::debug("inotify on {} failed; polling only", dir);
  }
  if (!watcher_->reading) {
    watcher_->reading = true;
    on_inotify();
  }
}

void Store::on_inotify() {
  watcher_->stream.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                              [this](const boost::system::error_code& ec) {
                                if (ec) return;
                                char buf[4096];
                                while (::read(watcher_->fd, buf, sizeof(buf)) > 0) {
                                }
                                schedule_check();
                                on_inotify();
                              });
}

void Store::schedule_check() {
  // Writers change a pair in several steps (cert, then key): look once
  // things settled for a moment.
  watcher_->debounce.expires_after(kSettle);
  watcher_->debounce.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) check();
  });
}

void Store::schedule_poll() {
  if (watcher_->check_pending) return;
  watcher_->check_pending = true;
  watcher_->poll.expires_after(std::chrono::seconds(1));
  watcher_->poll.async_wait([this](const boost::system::error_code& ec) {
    watcher_->check_pending = false;
    if (ec) return;
    check();
    schedule_poll();
  });
}

std::shared_ptr<ServerSlot> Store::listener(const std::string& name) const {
  auto it = entries_.find("listener/" + name);
  return it == entries_.end() ? nullptr : it->second->server_slot;
}

std::shared_ptr<ClientSlot> Store::cluster(const std::string& name) const {
  auto it = entries_.find("cluster/" + name);
  return it == entries_.end() ? nullptr : it->second->client_slot;
}

std::string Store::certs_json() const {
  std::string b = "{\"certificates\":[";
  bool first = true;
  for (const auto& [key, e] : entries_) {
    for (size_t i = 0; i < e->in_use.size(); ++i) {
      const CertificateInfo& info = e->in_use[i];
      if (!first) b += ',';
      first = false;
      b += e->server ? "{\"listener\":" : "{\"cluster\":";
      core::append_json_string(b, e->name);
      b += ",\"source\":";
      core::append_json_string(b, info.source);
      b += ",\"subject\":";
      core::append_json_string(b, info.subject);
      b += ",\"dns_sans\":";
      append_strings(b, info.dns_sans);
      b += ",\"uri_sans\":";
      append_strings(b, info.uri_sans);
      b += ",\"issuer\":";
      core::append_json_string(b, info.issuer);
      b += ",\"serial\":";
      core::append_json_string(b, info.serial);
      b += fmt::format(
          ",\"not_before\":\"{}\",\"not_after\":\"{}\",\"key_type\":\"{}\","
          "\"default\":{},\"reloads\":{},\"reload_failures\":{}}}",
          rfc3339(info.not_before), rfc3339(info.not_after), info.key_type,
          e->server && i == 0 ? "true" : "false", e->reloads, e->failures);
    }
  }
  b += "]}";
  return b;
}

void Store::collect(stats::MetricWriter& w) const {
  using stats::Label;
  using stats::MetricType;
  if (entries_.empty()) return;
  w.family("sidecar_tls_certificate_expiry_timestamp_seconds", MetricType::kGauge,
           "When a certificate in use expires (seconds since the epoch).");
  for (const auto& [key, e] : entries_) {
    for (const CertificateInfo& c : e->in_use) {
      const Label labels[] = {{"scope", e->server ? "listener" : "cluster"},
                              {"name", e->name},
                              {"serial", c.serial},
                              {"source", c.source}};
      w.sample(labels, static_cast<double>(c.not_after));
    }
  }
  w.family("sidecar_tls_certificate_reloads_total", MetricType::kCounter,
           "Certificate files changed and were taken into use.");
  for (const auto& [key, e] : entries_) {
    const Label labels[] = {{"scope", e->server ? "listener" : "cluster"}, {"name", e->name}};
    w.sample(labels, static_cast<double>(e->reloads));
  }
  w.family("sidecar_tls_certificate_reload_failures_total", MetricType::kCounter,
           "Certificate files changed but were rejected (the previous ones stay in use).");
  for (const auto& [key, e] : entries_) {
    const Label labels[] = {{"scope", e->server ? "listener" : "cluster"}, {"name", e->name}};
    w.sample(labels, static_cast<double>(e->failures));
  }
}

void register_validator() {
  config::register_validator("tls", [](const config::Config& c, std::vector<std::string>& errors) {
    for (size_t i = 0; i < c.listeners.size(); ++i) {
      const config::ServerTls& t = c.listeners[i].tls;
      if (t.enabled && t.certificates.empty() && c.section("acme") == nullptr) {
        errors.push_back(
            fmt::format("{}: listeners[{}].tls needs certificates (or an acme "
                        "section that serves this listener)",
                        t.origin, i));
      }
    }
    if (!uses_tls(c)) return;
    try {
      library().validate(c, errors);
    } catch (const std::runtime_error& e) {
      errors.push_back(fmt::format("{}: {}", c.source, e.what()));
    }
  });
}

}  // namespace sidecar::tls
