// TLS contexts on OpenSSL 3 (part of libsidecar-tls.so): what a listener
// terminates with and what a cluster originates with, built from config and
// certificates off the data path, immutable once built. A certificate change
// builds a new context that new handshakes use; connections that are up keep
// the one they started with (each session holds its context).
//
// Choices (docs/tls.md says why): OpenSSL directly with SSL_set_fd on the
// non-blocking socket (no memory BIO copies), SSL_MODE_RELEASE_BUFFERS (an
// idle connection keeps no record buffers), partial writes, renegotiation
// off, TLS 1.2 and 1.3 only, Mozilla's "intermediate" TLS 1.2 ciphers by
// default, server cipher preference, X25519/P-256/P-384.
//
// Thread safety: contexts are immutable after build and shared by all
// threads; a session belongs to one connection on one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "tls/certificate.h"
#include "tls/tls.h"

struct ssl_ctx_st;

namespace sidecar::tls {

class TicketKeys;

// A certificate as served or presented.
struct ServedCertificate {
  std::string source;  // "file /etc/tls/a.crt", "acme", "self-signed"
  std::shared_ptr<const KeyPair> pair;
};

class OpenSslServerContext final : public ServerContext,
                                   public std::enable_shared_from_this<OpenSslServerContext> {
 public:
  // `certificates` in SNI preference order (the first is the default);
  // `client_ca_pem` is empty without mTLS. Throws std::runtime_error.
  static std::shared_ptr<const OpenSslServerContext> build(
      const config::ServerTls& config, std::vector<ServedCertificate> certificates,
      const std::string& client_ca_pem, std::shared_ptr<TicketKeys> tickets);
  ~OpenSslServerContext() override;

  std::unique_ptr<net::SecureLayer> new_session(int fd) const override;

 private:
  OpenSslServerContext() = default;
  friend struct ServerCallbacks;
  ssl_ctx_st* select(const char* server_name) const;

  config::ServerTls config_;
  std::vector<ServedCertificate> certificates_;
  std::vector<ssl_ctx_st*> contexts_;  // one per certificate, same settings
  std::vector<unsigned char> alpn_;    // wire format, server preference
  std::shared_ptr<TicketKeys> tickets_;
};

class OpenSslClientContext final : public ClientContext,
                                   public std::enable_shared_from_this<OpenSslClientContext> {
 public:
  // `client_pair` may be null (no client certificate); `ca_pem` is empty for
  // the system bundle. Throws std::runtime_error.
  static std::shared_ptr<const OpenSslClientContext> build(
      const config::ClientTls& config, std::shared_ptr<const KeyPair> client_pair,
      const std::string& ca_pem);
  ~OpenSslClientContext() override;

  std::unique_ptr<net::SecureLayer> new_session(int fd, const std::string& host,
                                                SessionCache* cache) const override;

 private:
  OpenSslClientContext() = default;
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
