// TLS contexts on OpenSSL 3: what a listener terminates with and what a
// cluster originates with, built from config and certificates off the data
// path, immutable once built, shared by every worker. A certificate change
// builds a new context that new handshakes use; connections that are up keep
// the one they started with (each session holds its context).
//
// Choices (docs/tls.md says why): OpenSSL directly with SSL_set_fd on the
// non-blocking socket (no memory BIO copies), SSL_MODE_RELEASE_BUFFERS (an
// idle connection keeps no 34 KiB of record buffers), partial writes,
// renegotiation off, TLS 1.2 and 1.3 only, Mozilla's "intermediate" TLS 1.2
// ciphers by default, server cipher preference, X25519/P-256/P-384.
//
// Thread safety: contexts are immutable after build and shared by all
// threads; a Session belongs to one connection on one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/transport.h"
#include "tls/certificate.h"

struct ssl_ctx_st;
struct ssl_session_st;

namespace sidecar::tls {

class TicketKeys;

// Why a handshake failed, for sidecar_tls_handshake_errors_total{reason}.
enum class HandshakeError : uint8_t {
  kNoClientCertificate,
  kBadCertificate,  // the peer's certificate failed verification (CA, SAN, expiry)
  kProtocol,        // version, cipher or ALPN mismatch; not TLS at all
  kTimeout,         // the handshake did not finish within the headers timeout
  kClosed,          // the peer closed or reset during the handshake
  kOther,
  kCount,
};
const char* to_string(HandshakeError e);
// The reason of a failed server handshake's error.
HandshakeError classify(const net::error_code& ec);

// Versions counted in sidecar_tls_handshakes_total{version}.
enum class Version : uint8_t { kTls12, kTls13, kCount };
const char* to_string(Version v);

// A certificate as served or presented: where it came from and its facts.
struct ServedCertificate {
  std::string source;  // "file /etc/tls/a.crt", "acme", "self-signed"
  std::shared_ptr<const KeyPair> pair;
};

class ServerContext : public std::enable_shared_from_this<ServerContext> {
 public:
  // Builds the context of a listener. `certificates` are in SNI preference
  // order (the first is the default); `client_ca_pem` is empty without mTLS.
  // Throws std::runtime_error saying what is wrong.
  static std::shared_ptr<const ServerContext> build(const config::ServerTls& config,
                                                    std::vector<ServedCertificate> certificates,
                                                    const std::string& client_ca_pem,
                                                    std::shared_ptr<TicketKeys> tickets);
  ~ServerContext();

  // A session for an accepted connection (server side of the handshake).
  std::unique_ptr<net::SecureLayer> new_session(int fd) const;
  const std::vector<ServedCertificate>& certificates() const { return certificates_; }

 private:
  ServerContext() = default;
  friend struct ServerCallbacks;
  ssl_ctx_st* select(const char* server_name) const;

  config::ServerTls config_;
  std::vector<ServedCertificate> certificates_;
  std::vector<ssl_ctx_st*> contexts_;  // one per certificate, same settings
  std::vector<unsigned char> alpn_;    // wire format, server preference
  std::shared_ptr<TicketKeys> tickets_;
};

// A slot of the last TLS session ticket an endpoint gave, for resumption
// (one per endpoint per worker; used on its worker thread only).
struct SessionCache {
  ssl_session_st* session = nullptr;
  SessionCache() = default;
  SessionCache(SessionCache&& o) noexcept : session(o.session) { o.session = nullptr; }
  SessionCache& operator=(SessionCache&&) = delete;
  ~SessionCache();
  void store(ssl_session_st* s);  // takes ownership
};

class ClientContext : public std::enable_shared_from_this<ClientContext> {
 public:
  // `client_pair` may be null (no client certificate); `ca_pem` is empty for
  // the system bundle. Throws std::runtime_error saying what is wrong.
  static std::shared_ptr<const ClientContext> build(const config::ClientTls& config,
                                                    std::shared_ptr<const KeyPair> client_pair,
                                                    const std::string& ca_pem);
  ~ClientContext();

  // A session for a connected socket to `host` (the endpoint's name, for SNI
  // and verification when the config does not set them); resumes with and
  // refreshes `cache` when given.
  std::unique_ptr<net::SecureLayer> new_session(int fd, const std::string& host,
                                                SessionCache* cache) const;
  const std::shared_ptr<const KeyPair>& client_pair() const { return client_pair_; }

 private:
  ClientContext() = default;
  config::ClientTls config_;
  ssl_ctx_st* ctx_ = nullptr;
  std::vector<unsigned char> alpn_;
  std::shared_ptr<const KeyPair> client_pair_;
};

// Session ticket keys of one listener, shared by its contexts across
// certificate reloads (so tickets survive them) and by every worker.
// Rotated in memory: a new encryption key every `rotation`, the two before
// it still decrypt.
class TicketKeys {
 public:
  explicit TicketKeys(int64_t rotation_seconds = 3600);
  struct Key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
  };
  // The current key (rotating first when due), and the key called `name`.
  Key current();
  bool find(const unsigned char* name, Key& out);

 private:
  void rotate_locked(int64_t now);
  std::mutex mutex_;
  std::vector<Key> keys_;  // newest first, at most 3
  int64_t rotated_at_ = 0;
  const int64_t rotation_;
};

}  // namespace sidecar::tls
