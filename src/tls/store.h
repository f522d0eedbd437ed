// The certificates the process serves and presents, kept current. The
// OpenSSL work is done by libsidecar-tls.so (tls.h), loaded when the first
// config with TLS is applied.
//
// For every TLS listener and cluster the store reads the configured files,
// builds a context (tls/context.h) and publishes it in a slot that workers
// read when a connection starts. The files are watched (inotify on their
// directories, which sees a Kubernetes secret volume's `..data` symlink swap
// and cert-manager's rewrites, plus a stat every second for volumes where
// inotify events do not arrive): a changed, valid set of files becomes a new
// context for new handshakes at once; a broken or mismatched one is rejected
// with a log line and a metric, and the old context stays. Connections that
// are up keep the context they started with.
//
// Thread safety: the store runs on the main thread (its io_context); slots
// are read by workers (a mutex held for a pointer copy).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "config/config.h"
#include "tls/slot.h"
#include "tls/tls.h"

namespace sidecar::stats {
class MetricWriter;
}

namespace sidecar::tls {

class Store {
 public:
  explicit Store(boost::asio::io_context& io);
  ~Store();

  // Builds every context of `config` (throws std::runtime_error naming the
  // listener or cluster when one cannot be built), keeps the slots of
  // listeners and clusters that still exist, and watches the files. On
  // reload, call with the new config before it is published to workers.
  void apply(const config::Config& config);

  // The slot of a TLS listener or cluster (null when it has no TLS).
  std::shared_ptr<ServerSlot> listener(const std::string& name) const;
  std::shared_ptr<ClientSlot> cluster(const std::string& name) const;

  // Serves `certificate` on listener `name` before its files (ACME): a
  // listener with `tls` and no certificates serves a self-signed stand-in
  // until one is provided. Main thread; a pair that does not load is
  // rejected with a log line.
  void provide(const std::string& listener, PemPair certificate);

  // Checks now (tests and SIGHUP); normally the watch does it.
  void check();

  // GET /certs: every certificate in use, JSON.
  std::string certs_json() const;
  void collect(stats::MetricWriter& w) const;

 private:
  struct Entry;
  void build(Entry& e);
  void watch(const std::string& path);
  void on_inotify();
  void schedule_poll();
  void schedule_check();

  boost::asio::io_context& io_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // "listener/NAME", "cluster/NAME"
  struct Watcher;
  std::unique_ptr<Watcher> watcher_;
};

// Registers the config validator that loads every certificate, key and CA
// file of a config ("FILE:LINE:COL: listeners[0].tls.certificates[0]: the
// private key does not match the certificate"), with libsidecar-tls.so when
// the config has TLS.
void register_validator();

}  // namespace sidecar::tls
