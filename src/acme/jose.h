// The cryptography of an ACME client, on OpenSSL 3: keys, JWS requests
// signed ES256, the JWK thumbprint for key authorizations, and the CSR.
//
//   - JWS: flattened JSON serialization [RFC 7515 7.2.2], ES256 [RFC 7518
//     3.4] (the signature is R || S, 32 bytes each, not DER), protected
//     header with "alg", "nonce", "url" and either "jwk" (newAccount) or
//     "kid" (the account URL) [RFC 8555 6.2];
//   - JWK thumbprint [RFC 7638]: SHA-256 of the required members in
//     lexicographic order without whitespace, base64url;
//   - key authorization [RFC 8555 8.1]: token "." thumbprint;
//   - CSR [RFC 2986] with the domains as DNS subjectAltNames, signed SHA-256.
//
// Errors: functions that can fail throw std::runtime_error with OpenSSL's
// reason. Thread safety: a PrivateKey is immutable after creation; the
// functions keep no state.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base64.h"

struct evp_pkey_st;

namespace sidecar::acme {

// base64url without padding [RFC 4648 5, RFC 7515 2] (core/base64.h).
inline std::string base64url(std::string_view bytes) { return core::base64url_encode(bytes); }
// Decodes base64url (padding optional); false on a byte outside the alphabet.
using core::base64url_decode;

class PrivateKey {
 public:
  PrivateKey() = default;
  // "p256" (ECDSA P-256, also the account key), "p384", "rsa2048", "rsa4096".
  static PrivateKey generate(std::string_view type);
  // A PEM private key (PKCS#8 or traditional).
  static PrivateKey from_pem(std::string_view pem);
  // PKCS#8 PEM, unencrypted (stored 0600).
  std::string to_pem() const;
  evp_pkey_st* get() const { return key_.get(); }
  explicit operator bool() const { return key_ != nullptr; }
  // Whether it is an ECDSA P-256 key (what ES256 signs with).
  bool is_p256() const;

 private:
  std::shared_ptr<evp_pkey_st> key_;
};

// The public JWK of a P-256 key with exactly the members RFC 7638 3.2 requires,
// in its order: {"crv":"P-256","kty":"EC","x":"...","y":"..."}.
std::string jwk_json(const PrivateKey& key);
// base64url(SHA-256(jwk_json(key))) [RFC 7638 3].
std::string jwk_thumbprint(const PrivateKey& key);

// The protected header of a request [RFC 8555 6.2]: with `kid` (the account
// URL) when not empty, else with the key's JWK (newAccount, or revocation by
// the certificate key).
std::string protected_header(const PrivateKey& key, std::string_view kid, std::string_view nonce,
                             std::string_view url);
// {"protected":..,"payload":..,"signature":..}: ES256 over
// base64url(protected) "." base64url(payload). An empty payload is
// POST-as-GET [RFC 8555 6.3].
std::string sign_jws(const PrivateKey& key, std::string_view protected_json,
                     std::string_view payload);

// A DER CSR for `domains` (the first is also the subject CN when it fits in
// 64 bytes), public key and signature of `key`.
std::string make_csr(const std::vector<std::string>& domains, const PrivateKey& key);

}  // namespace sidecar::acme
