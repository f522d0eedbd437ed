// Certificates and keys from PEM files, checked the way a user needs to hear
// about them: a key that does not match its certificate, an expired
// certificate, a file that is not PEM are errors with the reason. Part of
// libsidecar-tls.so (OpenSSL).
//
// Thread safety: a loaded KeyPair is immutable and shared by every thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tls/tls.h"

struct x509_st;
struct evp_pkey_st;
struct stack_st_X509;

namespace sidecar::tls {

class KeyPair {
 public:
  ~KeyPair();
  KeyPair(const KeyPair&) = delete;
  KeyPair& operator=(const KeyPair&) = delete;

  // Reads a PEM certificate chain (leaf first) and its private key. Throws
  // std::runtime_error saying what is wrong: unreadable file, not PEM, no
  // certificate, a key that does not match, an expired leaf.
  static std::shared_ptr<const KeyPair> load(const std::string& cert_file,
                                             const std::string& key_file);
  // The same from PEM text; `source` names it in errors.
  static std::shared_ptr<const KeyPair> from_pem(std::string_view cert_pem,
                                                 std::string_view key_pem,
                                                 const std::string& source);

  x509_st* leaf() const { return leaf_; }
  stack_st_X509* chain() const { return chain_; }  // intermediates, may be empty
  evp_pkey_st* key() const { return key_; }
  const CertificateInfo& info() const { return info_; }
  // Whether the certificate is for `host` (a DNS SAN, or the CN without
  // SANs; "*.example.com" covers one label) [RFC 6125 6.4].
  bool covers(std::string_view host) const;
  // Exact names (no wildcard) and wildcard suffixes (".example.com").
  const std::vector<std::string>& names() const { return info_.dns_sans; }

 private:
  KeyPair() = default;
  x509_st* leaf_ = nullptr;
  stack_st_X509* chain_ = nullptr;
  evp_pkey_st* key_ = nullptr;
  CertificateInfo info_;
};

// Describes a certificate (see CertificateInfo).
CertificateInfo describe(x509_st* cert);

// Reads a file whole; throws std::runtime_error naming the file.
std::string read_file(const std::string& path);

// Checks that `path` holds at least one PEM certificate (a CA bundle).
// Throws std::runtime_error with the reason.
void check_ca_file(const std::string& path);

// The last OpenSSL error as text, clearing the queue ("" when none).
std::string last_error();

// A self-signed certificate and key for `names` (ECDSA P-256), valid for
// `days`: the stand-in a listener serves until ACME has issued a real one.
PemPair self_signed(const std::vector<std::string>& names, int days);

}  // namespace sidecar::tls
