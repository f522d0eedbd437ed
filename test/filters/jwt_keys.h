// Test keys and token signing on OpenSSL, for the jwt_authn and rbac unit
// tests (the integration tests mint tokens with PyJWT instead).
#pragma once

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "filters/jwt_authn/jwt.h"

namespace sidecar::filters::testing {

struct TestKey {
  std::shared_ptr<EVP_PKEY> key;
  std::string alg;  // RS256, PS256, ES256, ES384, EdDSA, HS256
  std::string kid;
  std::string secret;  // HS*
};

inline TestKey make_key(const std::string& alg, const std::string& kid) {
  TestKey k{nullptr, alg, kid, {}};
  EVP_PKEY* p = nullptr;
  if (alg.starts_with("RS") || alg.starts_with("PS")) {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  } else if (alg == "ES256") {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  } else if (alg == "ES384") {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  } else if (alg == "EdDSA") {
    p = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  } else {
    k.secret = "a-test-secret-of-32-bytes-length";
    return k;
  }
  if (p == nullptr) throw std::runtime_error("keygen failed");
  k.key.reset(p, EVP_PKEY_free);
  return k;
}

inline std::string bn_param(EVP_PKEY* p, const char* name) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(p, name, &bn);
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

// The public JWK of `k`, as JSON.
inline std::string jwk(const TestKey& k) {
  using jwt_authn::base64url_encode;
  const std::string head = "{\"kid\":\"" + k.kid + "\",\"alg\":\"" + k.alg + "\",";
  if (!k.secret.empty())
    return head + "\"kty\":\"oct\",\"k\":\"" + base64url_encode(k.secret) + "\"}";
  if (k.alg.starts_with("RS") || k.alg.starts_with("PS")) {
    return head + "\"kty\":\"RSA\",\"n\":\"" +
           base64url_encode(bn_param(k.key.get(), OSSL_PKEY_PARAM_RSA_N)) + "\",\"e\":\"" +
           base64url_encode(bn_param(k.key.get(), OSSL_PKEY_PARAM_RSA_E)) + "\"}";
  }
  if (k.alg == "EdDSA") {
    unsigned char raw[32];
    size_t len = sizeof raw;
    EVP_PKEY_get_raw_public_key(k.key.get(), raw, &len);
    return head + "\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" +
           base64url_encode(std::string(reinterpret_cast<char*>(raw), len)) + "\"}";
  }
  unsigned char point[200];
  size_t len = 0;
  EVP_PKEY_get_octet_string_param(k.key.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
  const size_t half = (len - 1) / 2;
  const std::string pt(reinterpret_cast<char*>(point), len);
  return head + "\"kty\":\"EC\",\"crv\":\"" + (k.alg == "ES256" ? "P-256" : "P-384") +
         "\",\"x\":\"" + base64url_encode(pt.substr(1, half)) + "\",\"y\":\"" +
         base64url_encode(pt.substr(1 + half, half)) + "\"}";
}

inline std::string jwks(std::initializer_list<const TestKey*> keys) {
  std::string out = "{\"keys\":[";
  for (const TestKey* k : keys) out += (out.back() == '[' ? "" : ",") + jwk(*k);
  return out + "]}";
}

// A compact JWS of `payload_json` signed by `k` (header alg/kid from `k`
// unless `header_json` is given).
inline std::string sign(const TestKey& k, const std::string& payload_json,
                        std::string header_json = "") {
  using jwt_authn::base64url_encode;
  if (header_json.empty())
    header_json = "{\"alg\":\"" + k.alg + "\",\"typ\":\"JWT\",\"kid\":\"" + k.kid + "\"}";
  const std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  const EVP_MD* md = k.alg == "EdDSA" ? nullptr : k.alg == "ES384" ? EVP_sha384() : EVP_sha256();
  std::string sig;
  if (!k.secret.empty()) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), k.secret.data(), static_cast<int>(k.secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    sig.assign(reinterpret_cast<char*>(mac), len);
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    EVP_DigestSignInit(ctx, &pctx, md, nullptr, k.key.get());
    if (k.alg.starts_with("PS")) {
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    size_t len = 0;
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    sig.resize(len);
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    if (k.alg.starts_with("ES")) {
      // DER -> R || S
      const size_t half = k.alg == "ES256" ? 32 : 48;
      const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
      ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
      std::string raw(2 * half, '\0');
      BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), half);
      BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + half, half);
      ECDSA_SIG_free(s);
      sig = raw;
    }
  }
  return input + "." + base64url_encode(sig);
}

}  // namespace sidecar::filters::testing
