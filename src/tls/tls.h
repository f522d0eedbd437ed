// TLS as the rest of the process sees it: contexts that open sessions
// (net::SecureLayer) on accepted or connected sockets, built by
// libsidecar-tls.so (OpenSSL 3), which is loaded the first time a config has
// a TLS listener or cluster. A sidecar without TLS maps no OpenSSL (about
// 1.7 MiB of resident memory). See docs/tls.md.
//
// Thread safety: contexts are immutable once built and shared by every
// worker; a session belongs to one connection on one thread. library() is
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/transport.h"

namespace sidecar::tls {

// What /certs and the metrics show of a certificate.
struct CertificateInfo {
  std::string source;   // "file /etc/tls/a.crt", "acme", "self-signed"
  std::string subject;  // RFC 2253, "CN=app.example.com,O=Example"
  std::string issuer;
  std::string serial;  // uppercase hex without colons, as `openssl x509 -serial`
  std::vector<std::string> dns_sans;
  std::vector<std::string> uri_sans;
  int64_t not_before = 0;  // seconds since the Unix epoch
  int64_t not_after = 0;
  std::string key_type;  // "RSA 2048", "EC P-256", "ED25519"
};

// A certificate chain (leaf first) and its private key, in PEM.
struct PemPair {
  std::string source;  // as in CertificateInfo
  std::string cert;
  std::string key;
};

// A listener's context: opens the server side of a handshake.
class ServerContext {
 public:
  virtual ~ServerContext() = default;
  virtual std::unique_ptr<net::SecureLayer> new_session(int fd) const = 0;
};

// The last session an upstream endpoint gave, for resumption: one per
// endpoint per worker, used on its worker's thread only.
struct SessionCache {
  void* session = nullptr;  // owned; freed by `release`
  void (*release)(void*) = nullptr;
  SessionCache() = default;
  SessionCache(SessionCache&& o) noexcept : session(o.session), release(o.release) {
    o.session = nullptr;
  }
  SessionCache& operator=(SessionCache&&) = delete;
  ~SessionCache() {
    if (session != nullptr) release(session);
  }
};

// A cluster's context: opens the client side of a handshake to `host` (the
// endpoint's name, for SNI and verification unless the config sets them),
// resuming with and refreshing `cache` when given.
class ClientContext {
 public:
  virtual ~ClientContext() = default;
  virtual std::unique_ptr<net::SecureLayer> new_session(int fd, const std::string& host,
                                                        SessionCache* cache) const = 0;
};

struct BuiltServer {
  std::shared_ptr<const ServerContext> context;
  std::vector<CertificateInfo> certificates;  // in SNI order, the default first
};

struct BuiltClient {
  std::shared_ptr<const ClientContext> context;
  std::vector<CertificateInfo> certificates;  // the client certificate, if any
};

// The entry points of libsidecar-tls.so. Builders throw std::runtime_error
// saying what is wrong (a key that does not match, an expired certificate,
// a file that is not PEM).
struct Library {
  // `certificates` in SNI preference order; `client_ca_pem` empty without
  // mTLS; `ticket_keys` from new_ticket_keys() (kept across rebuilds so
  // that session tickets survive a certificate change).
  BuiltServer (*build_server)(const config::ServerTls& config,
                              const std::vector<PemPair>& certificates,
                              const std::string& client_ca_pem,
                              const std::shared_ptr<void>& ticket_keys);
  // `client_certificate` may be null; `ca_pem` empty for the system bundle.
  BuiltClient (*build_client)(const config::ClientTls& config, const PemPair* client_certificate,
                              const std::string& ca_pem);
  std::shared_ptr<void> (*new_ticket_keys)();
  // A self-signed ECDSA P-256 certificate for `names`, valid for `days`: what
  // a listener waiting for ACME serves meanwhile.
  PemPair (*self_signed)(const std::vector<std::string>& names, int days);
  // Loads every certificate, key and CA file of `config`; appends
  // "FILE:LINE:COL: listeners[0].tls.certificates[0]: reason" lines.
  void (*validate)(const config::Config& config, std::vector<std::string>& errors);
};

inline constexpr const char* kLibrarySymbol = "sidecar_tls_library";

// libsidecar-tls.so's entry points, loading it once. Throws
// std::runtime_error when it cannot be loaded.
const Library& library();

// Whether `config` has a TLS listener or cluster.
bool uses_tls(const config::Config& config);

}  // namespace sidecar::tls
