// The module contract (DESIGN.md "Subsystems beside the data path"): what
// sync, log shipping, registry, ACME, the tracing exporter and health
// checking have in common, so that app/run.cc holds a list of modules and
// knows none of their insides.
//
// A module kind owns one top-level config key. It registers the key's parser
// (the loader then validates the section with FILE:LINE:COL errors) and how
// to create the module: linked into the binary, or in a shared object
// `libsidecar-<key>.so` next to the binary, loaded the first time a config
// has the key (for modules whose libraries would add resident memory to
// every sidecar; see docs/lifecycle.md).
//
// Life of a module, all calls on the main thread unless said otherwise:
//   create (from its section) -> start() -> [reload()]* -> on_shutdown()
//   -> stop(deadline) -> destructor.
// A module does its work on threads or timers of its own and never on a
// worker (it must not add latency to traffic).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/registry.h"

struct rusage;

namespace sidecar::stats {
class MetricWriter;
}

namespace sidecar::module {

// An admin request and its answer (the admin server's types).
struct AdminRequest {
  std::string method;
  std::string path;    // without the query
  std::string query;   // after '?', undecoded
  std::string accept;  // the Accept header
  std::string body;
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using AdminHandler = std::function<void(const AdminRequest&, AdminResponse&)>;

// The supervised app's output streams.
enum class AppStream { kStdout = 1, kStderr = 2 };
// Receives bytes the app wrote to `stream`, in order, after they were
// passed on to the sidecar's own stdout/stderr; empty `data`: the stream
// closed (the app exited; once per run of the app). Called on a thread of
// the supervisor: it must not block (queue and return), and may run until
// the process exits, so it must keep alive what it touches.
using AppOutputFn = std::function<void(AppStream stream, std::string_view data)>;

struct AdminRoute {
  std::string method;    // GET or POST
  std::string path;      // exact
  AdminHandler handler;  // runs on the main thread
};

// What a module needs from the process it runs in. Thread-safe, all of it.
class Host {
 public:
  virtual ~Host() = default;
  // Sends `sig` to the supervised app, if any.
  virtual void signal_app(int sig) = 0;
  // Runs `argv` in `cwd` with `env` added and waits up to `timeout` (then
  // kills it); returns the exit code, or nothing (could not start, killed by
  // a signal or the timeout). Blocks the caller: never call on the main thread.
  virtual std::optional<int> run(const std::vector<std::string>& argv, const std::string& cwd,
                                 const std::vector<std::pair<std::string, std::string>>& env,
                                 std::chrono::milliseconds timeout) = 0;
  // A one-shot module (see Module::once) has finished: the process exits
  // when every one-shot module is done and nothing else runs (no listener,
  // no app), with 0 only if all of them succeeded.
  virtual void once_done() = 0;
  // The live config.
  virtual std::shared_ptr<const config::Config> config() const = 0;
  // Serves a certificate (PEM chain, leaf first) and its key on TLS
  // listener `listener` for new handshakes, ahead of its configured files
  // (ACME). `source` names it in /certs ("acme"). Rejected with a log line
  // when the pair does not load.
  virtual void provide_certificate(const std::string& listener, const std::string& cert_pem,
                                   const std::string& key_pem, const std::string& source) = 0;
  // Children a module runs and waits for on its own thread (sync's git
  // commands: output captured, a deadline, killed at stop even after the
  // main loop has ended). `spawn` starts one and returns its pid (or -1);
  // it runs under the lock the process's reaper takes, so the reaper keeps
  // that child's exit for reap_child instead of dropping it.
  virtual pid_t spawn_child(const std::function<pid_t()>& spawn) = 0;
  // The wait status and resource usage of a child from spawn_child once it
  // has exited (reaping it when the reaper has not): true, and the child is
  // forgotten; false while it runs. Never blocks.
  virtual bool reap_child(pid_t pid, int& wait_status, struct rusage& usage) = 0;
  // Answers the ACME HTTP-01 challenge `token` with `key_authorization` on
  // every plain HTTP listener until cleared (tls/acme_challenges.h). Through
  // the Host because a module in a shared object has its own copy of the
  // binary's static libraries, and so of the table the listeners read.
  virtual void set_acme_challenge(const std::string& token,
                                  const std::string& key_authorization) = 0;
  virtual void clear_acme_challenge(const std::string& token) = 0;
  // Asks for a copy of the supervised app's stdout and stderr. Only before
  // the app starts (from the module's constructor or start()): the app's
  // output then goes through pipes that the sidecar passes on to its own
  // stdout/stderr; without a subscriber the app inherits them as before.
  virtual void subscribe_app_output(AppOutputFn fn) {}
  // Whether /ready answers 200 now (the app is ready and every module too;
  // false while starting, draining or shutting down). Asks the main thread
  // and waits for it (at most a second, then false): never call it on the
  // main thread.
  virtual bool process_ready() { return true; }
  // Discovery (the registry's etcd watch): the live endpoints of cluster
  // `cluster` are now `endpoints` (empty: none). The process derives a
  // config snapshot with them (config/discovered.h) and publishes it to the
  // workers as a reload does; they are kept across config reloads. Returns
  // at once; applied on the main thread.
  virtual void update_cluster_endpoints(const std::string& cluster,
                                        std::vector<config::Address> endpoints) {}
};

class Module {
 public:
  // A one-shot module runs its work once and then lets the process exit
  // (`sync: [{once: true}]` as a Kubernetes init container).
  enum class Once { kNo, kRunning, kSucceeded, kFailed };

  virtual ~Module() = default;

  // The top-level key it was created from ("sync"); also its admin path.
  virtual const std::string& key() const = 0;
  // Starts its work. Called after the listeners and the admin endpoint are
  // up and before the app starts.
  virtual void start() = 0;
  // Whether it lets /ready answer 200. Thread-safe.
  virtual bool ready() const { return true; }
  virtual Once once() const { return Once::kNo; }
  // A reloaded config has a different section for this module: apply it and
  // return true, or return false when it applies on restart only (the host
  // says so in the log).
  virtual bool reload(const config::Section& section) { return false; }
  // Shutdown began (step 1: /ready is 503 from now on).
  virtual void on_shutdown() {}
  // Stop all work; returns by `deadline` whatever it is waiting for
  // (children are killed, threads left blocked are detached). Called once the
  // app has exited and the outbound listeners drained.
  virtual void stop(std::chrono::steady_clock::time_point deadline) = 0;
  // A signal the process received (SIGHUP, SIGUSR1, SIGUSR2).
  virtual void on_signal(int sig) {}
  // Its metrics, on a scrape (main thread).
  virtual void collect(stats::MetricWriter& writer) const {}
  // Its status as a JSON object: served as GET /<key> on the admin endpoint.
  virtual std::string status_json() const = 0;
  // More admin endpoints (e.g. POST /sync).
  virtual std::vector<AdminRoute> admin_routes() { return {}; }
};

// How a module kind is created.
using CreateFn = Module* (*)(const config::Section& section, Host& host);

struct Kind {
  std::string key;       // the top-level config key it owns
  config::Parser parse;  // parses the section
  // Linked into the binary: creates it. Null: the module lives in
  // libsidecar-<key>.so next to the binary, whose C entry point
  // `sidecar_module_create` has this signature.
  CreateFn create = nullptr;
};

inline constexpr const char* kCreateSymbol = "sidecar_module_create";

// Registers a kind and its parser. At startup, before any config is loaded.
void register_kind(Kind kind);

// Creates a module for every registered kind whose key `config` has, in
// registration order. Throws std::runtime_error when a shared object cannot
// be loaded.
std::vector<std::unique_ptr<Module>> create_all(const config::Config& config, Host& host);

// Creates the module for one kind (the key must be registered and present).
std::unique_ptr<Module> create(const std::string& key, const config::Section& section, Host& host);

// The registered keys, in registration order.
std::vector<std::string> keys();

}  // namespace sidecar::module
