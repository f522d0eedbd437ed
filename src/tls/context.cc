#include "tls/context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <cstring>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

namespace sidecar::tls {
namespace {

// Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are OpenSSL's).
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

int ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int ssl_ex_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::vector<unsigned char> alpn_wire(const std::vector<std::string>& protocols) {
  std::vector<unsigned char> out;
  for (const std::string& p : protocols) {
    out.push_back(static_cast<unsigned char>(p.size()));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

// Whether the certificate has one of `allowed` as a URI or DNS SAN (exact).
bool san_allowed(X509* cert, const std::vector<std::string>& allowed) {
  const CertificateInfo info = describe(cert);
  for (const std::string& a : allowed) {
    for (const std::string& s : info.uri_sans) {
      if (s == a) return true;
    }
    for (const std::string& s : info.dns_sans) {
      if (s == a) return true;
    }
  }
  return false;
}

bool is_ip(const std::string& host) {
  unsigned char raw[16];
  return inet_pton(AF_INET, host.c_str(), raw) == 1 || inet_pton(AF_INET6, host.c_str(), raw) == 1;
}

X509_STORE* store_from_pem(const std::string& pem, STACK_OF(X509_NAME) * names) {
  X509_STORE* store = X509_STORE_new();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int n = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, x);
    if (names != nullptr) sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(x)));
    X509_free(x);
    ++n;
  }
  ERR_clear_error();
  BIO_free(bio);
  if (n == 0) {
    X509_STORE_free(store);
    throw std::runtime_error("no PEM certificate in the CA file");
  }
  return store;
}

void common_settings(SSL_CTX* ctx, const std::string& min_version) {
  SSL_CTX_set_min_proto_version(ctx, min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set1_groups_list(ctx, kGroups);
}

void use_pair(SSL_CTX* ctx, const KeyPair& pair) {
  if (SSL_CTX_use_certificate(ctx, pair.leaf()) != 1 ||
      SSL_CTX_set1_chain(ctx, pair.chain()) != 1 || SSL_CTX_use_PrivateKey(ctx, pair.key()) != 1) {
    throw std::runtime_error("cannot use the certificate: " + last_error());
  }
}

// One connection's TLS, on the socket's file descriptor.
class Session final : public net::SecureLayer {
 public:
  Session(SSL* ssl, std::shared_ptr<const void> context)
      : ssl_(ssl), context_(std::move(context)) {}
  ~Session() override { SSL_free(ssl_); }

  Result handshake() override {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      fill_info();
      return Result::kDone;
    }
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
        return Result::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Result::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
      case SSL_ERROR_SYSCALL:
        failure_ = ERR_peek_error() != 0 ? last_error() : "connection closed during the handshake";
        error_ = net::TlsError::kClosed;
        return Result::kFailed;
      default:
        break;
    }
    const long verify = SSL_get_verify_result(ssl_);
    const int reason = ERR_GET_REASON(ERR_peek_error());
    error_ = net::TlsError::kOther;
    if (verify != X509_V_OK) {
      error_ = net::TlsError::kBadCertificate;
      failure_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
      ERR_clear_error();
      return Result::kFailed;
    }
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
        reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) {
      error_ = net::TlsError::kNoClientCertificate;
    } else if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED ||
               reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
               reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
               reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED) {
      error_ = net::TlsError::kBadCertificate;
    } else if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_WRONG_VERSION_NUMBER ||
               reason == SSL_R_NO_SHARED_CIPHER || reason == SSL_R_HTTP_REQUEST ||
               reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
               reason == SSL_R_NO_PROTOCOLS_AVAILABLE || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
               reason == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL ||
               reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE) {
      error_ = net::TlsError::kProtocol;
    }
    failure_ = last_error();
    if (failure_.empty()) failure_ = "handshake failed";
    return Result::kFailed;
  }

  net::TlsError handshake_error() const override { return error_; }

  Result read(void* buf, size_t n, size_t& done) override {
    ERR_clear_error();
    errno = 0;
    if (SSL_read_ex(ssl_, buf, n, &done) == 1) return Result::kDone;
    return io_result(SSL_get_error(ssl_, 0));
  }

  Result write(const void* buf, size_t n, size_t& done) override {
    ERR_clear_error();
    errno = 0;
    if (SSL_write_ex(ssl_, buf, n, &done) == 1) return Result::kDone;
    return io_result(SSL_get_error(ssl_, 0));
  }

  int sys_errno() const override { return errno_; }

  void shutdown() override {
    if (shut_) return;
    shut_ = true;
    ERR_clear_error();
    if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
    ERR_clear_error();
  }

  bool has_pending() const override { return SSL_has_pending(ssl_) == 1; }

  const net::TlsInfo& info() const override { return info_; }
  std::string failure_reason() const override { return failure_; }

 private:
  Result io_result(int error) {
    switch (error) {
      case SSL_ERROR_WANT_READ:
        return Result::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Result::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Result::kClosed;
      case SSL_ERROR_SYSCALL:
        errno_ = errno;
        return errno_ == 0 ? Result::kClosed : Result::kFailed;
      default:
        errno_ = 0;
        failure_ = last_error();
        return Result::kFailed;
    }
  }

  void fill_info() {
    info_.version = SSL_get_version(ssl_);
    if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) {
      info_.server_name = sni;
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
    info_.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
    info_.resumed = SSL_session_reused(ssl_) == 1;
    if (X509* peer = SSL_get0_peer_certificate(ssl_)) {
      CertificateInfo ci = describe(peer);
      info_.peer_subject = std::move(ci.subject);
      info_.peer_uri_sans = std::move(ci.uri_sans);
      info_.peer_dns_sans = std::move(ci.dns_sans);
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      if (X509_digest(peer, EVP_sha256(), md, &len) == 1) {
        static constexpr char kHex[] = "0123456789abcdef";
        info_.peer_cert_sha256.reserve(len * 2);
        for (unsigned int i = 0; i < len; ++i) {
          info_.peer_cert_sha256 += kHex[md[i] >> 4];
          info_.peer_cert_sha256 += kHex[md[i] & 15];
        }
      }
    }
  }

  SSL* ssl_;
  std::shared_ptr<const void> context_;  // keeps the SSL_CTX's owner alive
  bool shut_ = false;
  int errno_ = 0;
  net::TlsError error_ = net::TlsError::kNone;
  net::TlsInfo info_;
  std::string failure_;
};

int64_t now_seconds() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

// ---- server ----

// OpenSSL's C callbacks, with access to the context's insides.
struct ServerCallbacks {
  static const OpenSslServerContext* of(SSL* ssl) {
    return static_cast<const OpenSslServerContext*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
  }

  // SNI: switch to the certificate for the name; unknown names get the default.
  static int servername(SSL* ssl, int*, void*) {
    const OpenSslServerContext* c = of(ssl);
    if (c == nullptr) return SSL_TLSEXT_ERR_OK;
    SSL_CTX* chosen = c->select(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
    if (chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
    return SSL_TLSEXT_ERR_OK;
  }

  // ALPN: the first of our protocols the client offers; none in common:
  // go on without ALPN (the client decides whether that is fatal).
  static int alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                  const unsigned char* in, unsigned int inlen, void*) {
    const OpenSslServerContext* c = of(ssl);
    if (c == nullptr || c->alpn_.empty()) return SSL_TLSEXT_ERR_NOACK;
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, c->alpn_.data(),
                              static_cast<unsigned int>(c->alpn_.size()), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
      return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }

  // The client's certificate chain verified; also its SAN against the list.
  static int verify(int ok, X509_STORE_CTX* store) {
    if (ok != 1 || X509_STORE_CTX_get_error_depth(store) != 0) return ok;
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    const OpenSslServerContext* c = of(ssl);
    if (c == nullptr || c->config_.verify_client_san.empty()) return ok;
    if (san_allowed(X509_STORE_CTX_get_current_cert(store), c->config_.verify_client_san)) return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_SUBJECT_ISSUER_MISMATCH);
    return 0;
  }

  static int ticket(SSL* ssl, unsigned char name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx,
                    EVP_MAC_CTX* hctx, int enc) {
    const OpenSslServerContext* c = of(ssl);
    if (c == nullptr || !c->tickets_) return -1;
    TicketKeys::Key key;
    int rc = 1;
    if (enc == 1) {
      key = c->tickets_->current();
      std::memcpy(name, key.name, 16);
      if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) return -1;
    } else {
      if (!c->tickets_->find(name, key)) return 0;  // unknown: full handshake
      if (std::memcmp(c->tickets_->current().name, name, 16) != 0) rc = 2;  // renew
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof(key.hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
    const int ok = enc == 1 ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes, iv)
                            : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, key.aes, iv);
    return ok == 1 ? rc : -1;
  }
};

std::shared_ptr<const OpenSslServerContext> OpenSslServerContext::build(
    const config::ServerTls& config, std::vector<ServedCertificate> certificates,
    const std::string& client_ca_pem, std::shared_ptr<TicketKeys> tickets) {
  if (certificates.empty()) throw std::runtime_error("no certificate to serve");
  std::shared_ptr<OpenSslServerContext> c(new OpenSslServerContext());
  c->config_ = config;
  c->certificates_ = std::move(certificates);
  c->alpn_ = alpn_wire(config.alpn);
  c->tickets_ = config.session_tickets ? std::move(tickets) : nullptr;
  std::string ciphers;
  for (const std::string& s : config.cipher_suites) ciphers += (ciphers.empty() ? "" : ":") + s;
  if (ciphers.empty()) ciphers = kDefaultCiphers;
  X509_STORE* ca = nullptr;
  if (!client_ca_pem.empty()) ca = store_from_pem(client_ca_pem, nullptr);
  for (const ServedCertificate& cert : c->certificates_) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    c->contexts_.push_back(ctx);
    common_settings(ctx, config.min_version);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
      if (ca != nullptr) X509_STORE_free(ca);
      throw std::runtime_error("cipher_suites: none of them is known to OpenSSL");
    }
    use_pair(ctx, *cert.pair);
    SSL_CTX_set_ex_data(ctx, ex_index(), c.get());
    SSL_CTX_set_tlsext_servername_callback(ctx, &ServerCallbacks::servername);
    SSL_CTX_set_alpn_select_cb(ctx, &ServerCallbacks::alpn, nullptr);
    static const unsigned char kSessionContext[] = "sidecar";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
    SSL_CTX_set_num_tickets(ctx, 1);
    if (c->tickets_) {
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &ServerCallbacks::ticket);
    } else {
      SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
      SSL_CTX_sess_set_cache_size(ctx, 10000);
    }
    if (ca != nullptr) {
      SSL_CTX_set1_verify_cert_store(ctx, ca);
      STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
      X509_STORE_free(store_from_pem(client_ca_pem, names));
      SSL_CTX_set_client_CA_list(ctx, names);
      SSL_CTX_set_verify(
          ctx, SSL_VERIFY_PEER | (config.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
          &ServerCallbacks::verify);
    }
  }
  if (ca != nullptr) X509_STORE_free(ca);
  return c;
}

OpenSslServerContext::~OpenSslServerContext() {
  for (SSL_CTX* ctx : contexts_) SSL_CTX_free(ctx);
}

SSL_CTX* OpenSslServerContext::select(const char* server_name) const {
  if (server_name == nullptr || contexts_.size() == 1) return contexts_.front();
  const std::string_view name(server_name);
  for (size_t i = 0; i < certificates_.size(); ++i) {
    if (certificates_[i].pair->covers(name)) return contexts_[i];
  }
  return contexts_.front();
}

std::unique_ptr<net::SecureLayer> OpenSslServerContext::new_session(int fd) const {
  SSL* ssl = SSL_new(contexts_.front());
  SSL_set_fd(ssl, fd);
  SSL_set_accept_state(ssl);
  // The session keeps this context (and its SSL_CTXs' ex_data) alive.
  return std::make_unique<Session>(ssl, shared_from_this());
}

// ---- client ----

namespace {

void free_session(void* s) { SSL_SESSION_free(static_cast<SSL_SESSION*>(s)); }

int new_client_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache = static_cast<SessionCache*>(SSL_get_ex_data(ssl, ssl_ex_index()));
  if (cache == nullptr) return 0;
  if (cache->session != nullptr) cache->release(cache->session);
  cache->session = session;
  cache->release = &free_session;
  return 1;  // we keep the reference
}

// With URI SANs in verify_san (spiffe://...), the names are checked here:
// any DNS name (RFC 6125 rules) or any URI (exact) passes.
int client_verify(int ok, X509_STORE_CTX* store) {
  if (ok != 1 || X509_STORE_CTX_get_error_depth(store) != 0) return ok;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* names = static_cast<const std::vector<std::string>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
  if (names == nullptr) return ok;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  for (const std::string& n : *names) {
    if (n.find("://") == std::string::npos &&
        X509_check_host(cert, n.data(), n.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) ==
            1) {
      return 1;
    }
  }
  if (san_allowed(cert, *names)) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
  return 0;
}

bool has_uri(const std::vector<std::string>& names) {
  for (const std::string& n : names) {
    if (n.find("://") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::shared_ptr<const OpenSslClientContext> OpenSslClientContext::build(
    const config::ClientTls& config, std::shared_ptr<const KeyPair> client_pair,
    const std::string& ca_pem) {
  std::shared_ptr<OpenSslClientContext> c(new OpenSslClientContext());
  c->config_ = config;
  c->alpn_ = alpn_wire(config.alpn);
  c->client_pair_ = std::move(client_pair);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  c->ctx_ = ctx;
  common_settings(ctx, config.min_version);
  SSL_CTX_set_cipher_list(ctx, kDefaultCiphers);
  if (config.insecure_skip_verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (ca_pem.empty()) {
      SSL_CTX_set_default_verify_paths(ctx);
    } else {
      X509_STORE* store = store_from_pem(ca_pem, nullptr);
      SSL_CTX_set1_verify_cert_store(ctx, store);
      X509_STORE_free(store);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, &client_verify);
  }
  if (c->client_pair_) use_pair(ctx, *c->client_pair_);
  if (!c->alpn_.empty()) {
    SSL_CTX_set_alpn_protos(ctx, c->alpn_.data(), static_cast<unsigned int>(c->alpn_.size()));
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &new_client_session);
  if (has_uri(c->config_.verify_san)) SSL_CTX_set_ex_data(ctx, ex_index(), &c->config_.verify_san);
  return c;
}

OpenSslClientContext::~OpenSslClientContext() { SSL_CTX_free(ctx_); }

std::unique_ptr<net::SecureLayer> OpenSslClientContext::new_session(int fd, const std::string& host,
                                                                    SessionCache* cache) const {
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd);
  SSL_set_connect_state(ssl);
  const std::string& sni = config_.sni.empty() ? host : config_.sni;
  if (!sni.empty() && !is_ip(sni)) SSL_set_tlsext_host_name(ssl, sni.c_str());
  if (!config_.insecure_skip_verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (has_uri(config_.verify_san)) {
      // client_verify checks every name.
    } else if (!config_.verify_san.empty()) {
      bool first = true;
      for (const std::string& san : config_.verify_san) {
        first ? X509_VERIFY_PARAM_set1_host(param, san.c_str(), 0)
              : X509_VERIFY_PARAM_add1_host(param, san.c_str(), 0);
        first = false;
      }
    } else if (!sni.empty()) {
      if (is_ip(sni)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, sni.c_str());
      } else {
        X509_VERIFY_PARAM_set1_host(param, sni.c_str(), 0);
      }
    }
  }
  if (cache != nullptr) {
    SSL_set_ex_data(ssl, ssl_ex_index(), cache);
    if (cache->session != nullptr) SSL_set_session(ssl, static_cast<SSL_SESSION*>(cache->session));
  }
  return std::make_unique<Session>(ssl, shared_from_this());
}

// ---- session tickets ----

TicketKeys::TicketKeys(int64_t rotation_seconds) : rotation_(rotation_seconds) {}

void TicketKeys::rotate_locked(int64_t now) {
  Key k;
  RAND_bytes(k.name, sizeof(k.name));
  RAND_bytes(k.aes, sizeof(k.aes));
  RAND_bytes(k.hmac, sizeof(k.hmac));
  keys_.insert(keys_.begin(), k);
  if (keys_.size() > 3) keys_.resize(3);
  rotated_at_ = now;
}

TicketKeys::Key TicketKeys::current() {
  std::lock_guard lock(mutex_);
  const int64_t now = now_seconds();
  if (keys_.empty() || now - rotated_at_ >= rotation_) rotate_locked(now);
  return keys_.front();
}

bool TicketKeys::find(const unsigned char* name, Key& out) {
  std::lock_guard lock(mutex_);
  for (const Key& k : keys_) {
    if (std::memcmp(k.name, name, sizeof(k.name)) == 0) {
      out = k;
      return true;
    }
  }
  return false;
}

}  // namespace sidecar::tls
