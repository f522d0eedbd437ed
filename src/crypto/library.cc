// libsidecar-crypto.so: the crypto::Library table on OpenSSL 3's libcrypto
// and libxcrypt (see crypto/crypto.h). Also compiled into test and fuzz
// executables with SIDECAR_CRYPTO_LINKED, where it installs itself.
#include <crypt.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <cstring>
#include <memory>

#include "crypto/crypto.h"

namespace sidecar::crypto {
namespace {

const EVP_MD* md_of(Hash hash) {
  switch (hash) {
    case Hash::kSha1:
      return EVP_sha1();
    case Hash::kSha256:
      return EVP_sha256();
    case Hash::kSha384:
      return EVP_sha384();
    case Hash::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

std::string digest(Hash hash, std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d, &len, md_of(hash), nullptr) != 1) return {};
  return std::string(reinterpret_cast<const char*>(d), len);
}

std::string hmac(Hash hash, std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(md_of(hash), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &len) == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(mac), len);
}

void random_bytes(unsigned char* out, size_t n) { RAND_bytes(out, static_cast<int>(n)); }

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

PublicKey from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  if (params == nullptr) return nullptr;
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return PublicKey(pkey, PkeyDeleter());
}

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;

PublicKey rsa_public_key(std::string_view n, std::string_view e) {
  Bn bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()),
                    nullptr));
  Bn bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()),
                    nullptr));
  if (!bn_n || !bn_e || BN_num_bits(bn_n.get()) < 2048) return nullptr;
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return nullptr;
  PublicKey key;
  if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1) {
    key = from_params("RSA", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  return key;
}

PublicKey ec_public_key(const char* group, std::string_view point) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  if (bld == nullptr) return nullptr;
  PublicKey key;
  if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) ==
          1) {
    key = from_params("EC", bld);
  }
  OSSL_PARAM_BLD_free(bld);
  return key;
}

PublicKey ed25519_public_key(std::string_view x) {
  EVP_PKEY* p = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x.data()), x.size());
  return PublicKey(p, PkeyDeleter());
}

const EVP_MD* jws_digest(std::string_view alg) {
  std::string_view bits = alg.size() == 5 ? alg.substr(2) : std::string_view();
  if (bits == "256") return EVP_sha256();
  if (bits == "384") return EVP_sha384();
  if (bits == "512") return EVP_sha512();
  return nullptr;
}

bool verify(const evp_pkey_st* key, std::string_view alg, std::string_view input,
            std::string_view sig) {
  if (key == nullptr) return false;
  const EVP_MD* md = alg == "EdDSA" ? nullptr : jws_digest(alg);
  if (md == nullptr && alg != "EdDSA") return false;
  std::string der;
  if (alg.starts_with("ES")) {
    // JWS carries R || S, each the field size (RFC 7518 3.4); OpenSSL wants DER.
    const size_t half = alg == "ES256" ? 32 : alg == "ES384" ? 48 : 66;
    if (sig.size() != 2 * half) return false;
    ECDSA_SIG* s = ECDSA_SIG_new();
    if (s == nullptr) return false;
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), half, nullptr);
    BIGNUM* ss =
        BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + half, half, nullptr);
    if (r == nullptr || ss == nullptr || ECDSA_SIG_set0(s, r, ss) != 1) {
      BN_free(r);
      BN_free(ss);
      ECDSA_SIG_free(s);
      return false;
    }
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(s, &out);
    ECDSA_SIG_free(s);
    if (len <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), static_cast<size_t>(len));
    OPENSSL_free(out);
    sig = der;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return false;
  EVP_PKEY_CTX* pctx = nullptr;
  // EVP_DigestVerifyInit takes a non-const key but only reads it.
  bool ok = EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, const_cast<EVP_PKEY*>(key)) == 1;
  if (ok && alg.starts_with("PS")) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
  } else if (ok && alg.starts_with("RS")) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  }
  ok = ok &&
       EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bool crypt_matches(std::string_view hash, std::string_view password) {
  // crypt_rn wants C strings: a password with a NUL byte never matches.
  if (password.find('\0') != std::string_view::npos) return false;
  const std::string pw(password), setting(hash);
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_rn(pw.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  bool ok = false;
  if (out != nullptr && out[0] != '*') {
    const size_t n = std::strlen(out);
    ok = n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
  }
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return ok;
}

const Library kLibrary{digest,         hmac,          random_bytes,
                       rsa_public_key, ec_public_key, ed25519_public_key,
                       verify,         crypt_matches};

#ifdef SIDECAR_CRYPTO_LINKED
// Linked into an executable: install the table before main().
[[maybe_unused]] const bool installed = (provide(&kLibrary), true);
#endif

}  // namespace
}  // namespace sidecar::crypto

extern "C" __attribute__((visibility("default"))) const sidecar::crypto::Library*
sidecar_crypto_library() {
  return &sidecar::crypto::kLibrary;
}
