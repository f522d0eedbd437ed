#include "acme/jose.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include <fmt/format.h>

#include "core/json.h"
#include "tls/certificate.h"

namespace sidecar::acme {
namespace {

[[noreturn]] void fail(std::string_view what) {
  const std::string reason = tls::last_error();
  throw std::runtime_error(reason.empty() ? std::string(what)
                                          : fmt::format("{}: {}", what, reason));
}

std::string sha256(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1) fail("SHA-256");
  return std::string(reinterpret_cast<char*>(md), n);
}

// A big-endian unsigned integer of exactly `size` bytes (JWK coordinates,
// JWS signature halves keep their leading zeros [RFC 7518 3.4, 6.2.1.2]).
std::string fixed_bytes(const BIGNUM* bn, int size) {
  std::string out(static_cast<size_t>(size), '\0');
  if (BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), size) != size) {
    fail("number too large");
  }
  return out;
}

std::string ec_coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) fail("reading the public key");
  std::string out = fixed_bytes(bn, 32);
  BN_free(bn);
  return out;
}

}  // namespace

PrivateKey PrivateKey::generate(std::string_view type) {
  EVP_PKEY* key = nullptr;
  if (type == "p256") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  } else if (type == "p384") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  } else if (type == "rsa2048") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  } else if (type == "rsa4096") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{4096});
  } else {
    throw std::runtime_error(fmt::format("unknown key type '{}'", type));
  }
  if (key == nullptr) fail(fmt::format("generating a {} key", type));
  PrivateKey k;
  k.key_.reset(key, EVP_PKEY_free);
  return k;
}

PrivateKey PrivateKey::from_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) fail("not a PEM private key");
  PrivateKey k;
  k.key_.reset(key, EVP_PKEY_free);
  return k;
}

std::string PrivateKey::to_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(bio, key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    fail("writing the key");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(bio);
  return s;
}

bool PrivateKey::is_p256() const {
  if (!key_ || EVP_PKEY_get_base_id(key_.get()) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  EVP_PKEY_get_group_name(key_.get(), group, sizeof(group), &len);
  return std::string_view(group, len) == "prime256v1";
}

std::string jwk_json(const PrivateKey& key) {
  if (!key.is_p256()) throw std::runtime_error("the account key must be ECDSA P-256 (ES256)");
  return fmt::format(R"({{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}})",
                     base64url(ec_coordinate(key.get(), OSSL_PKEY_PARAM_EC_PUB_X)),
                     base64url(ec_coordinate(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y)));
}

std::string jwk_thumbprint(const PrivateKey& key) { return base64url(sha256(jwk_json(key))); }

std::string protected_header(const PrivateKey& key, std::string_view kid, std::string_view nonce,
                             std::string_view url) {
  std::string h = R"({"alg":"ES256",)";
  if (kid.empty()) {
    h += "\"jwk\":";
    h += jwk_json(key);
  } else {
    h += "\"kid\":";
    core::append_json_string(h, kid);
  }
  h += ",\"nonce\":";
  core::append_json_string(h, nonce);
  h += ",\"url\":";
  core::append_json_string(h, url);
  h += '}';
  return h;
}

std::string sign_jws(const PrivateKey& key, std::string_view protected_json,
                     std::string_view payload) {
  if (!key.is_p256()) throw std::runtime_error("the account key must be ECDSA P-256 (ES256)");
  const std::string p64 = base64url(protected_json);
  const std::string b64 = base64url(payload);
  const std::string input = p64 + "." + b64;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  size_t len = 0;
  std::string der;
  if (EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    EVP_MD_CTX_free(md);
    fail("signing");
  }
  der.resize(len);
  if (EVP_DigestSign(md, reinterpret_cast<unsigned char*>(der.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    EVP_MD_CTX_free(md);
    fail("signing");
  }
  EVP_MD_CTX_free(md);
  der.resize(len);
  // DER ECDSA-Sig-Value -> R || S [RFC 7518 3.4].
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) fail("decoding the signature");
  const std::string rs =
      fixed_bytes(ECDSA_SIG_get0_r(sig), 32) + fixed_bytes(ECDSA_SIG_get0_s(sig), 32);
  ECDSA_SIG_free(sig);
  return fmt::format(R"({{"protected":"{}","payload":"{}","signature":"{}"}})", p64, b64,
                     base64url(rs));
}

std::string make_csr(const std::vector<std::string>& domains, const PrivateKey& key) {
  if (domains.empty()) throw std::runtime_error("a CSR needs at least one domain");
  X509_REQ* req = X509_REQ_new();
  auto done = [&](const char* what) {
    X509_REQ_free(req);
    fail(what);
  };
  X509_REQ_set_version(req, 0);
  if (domains[0].size() <= 64) {
    X509_NAME* name = X509_REQ_get_subject_name(req);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(domains[0].c_str()), -1,
                                   -1, 0) != 1) {
      done("CSR subject");
    }
  }
  GENERAL_NAMES* names = GENERAL_NAMES_new();
  for (const std::string& d : domains) {
    GENERAL_NAME* gn = GENERAL_NAME_new();
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, d.data(), static_cast<int>(d.size()));
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    sk_GENERAL_NAME_push(names, gn);
  }
  X509_EXTENSION* san = X509V3_EXT_i2d(NID_subject_alt_name, 0, names);
  GENERAL_NAMES_free(names);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts, san);
  const int added = X509_REQ_add_extensions(req, exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  if (san == nullptr || added != 1) done("CSR subjectAltName");
  if (X509_REQ_set_pubkey(req, key.get()) != 1) done("CSR public key");
  if (X509_REQ_sign(req, key.get(), EVP_sha256()) <= 0) done("signing the CSR");
  unsigned char* der = nullptr;
  const int n = i2d_X509_REQ(req, &der);
  X509_REQ_free(req);
  if (n <= 0) fail("encoding the CSR");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

}  // namespace sidecar::acme
