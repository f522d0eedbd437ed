#include "tls/certificate.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>

#include "core/file_version.h"

namespace sidecar::tls {
namespace {

std::string name_text(X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(bio);
  return s;
}

int64_t time_of(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string date_of(int64_t seconds) {
  const time_t t = static_cast<time_t>(seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string key_type(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return fmt::format("RSA {}", EVP_PKEY_get_bits(key));
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      EVP_PKEY_get_group_name(key, group, sizeof(group), &len);
      const std::string g(group, len);
      if (g == "prime256v1") return "EC P-256";
      if (g == "secp384r1") return "EC P-384";
      if (g == "secp521r1") return "EC P-521";
      return "EC " + g;
    }
    case EVP_PKEY_ED25519:
      return "ED25519";
    default:
      return "other";
  }
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

}  // namespace

std::string last_error() {
  std::string s;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!s.empty()) s += "; ";
    // "error:0A000086:SSL routines::certificate verify failed" -> the reason.
    const char* reason = ERR_reason_error_string(e);
    s += reason != nullptr ? reason : buf;
  }
  return s;
}

std::string read_file(const std::string& path) {
  std::string text;
  if (!core::read_file(path, text)) {
    throw std::runtime_error(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  return text;
}

CertificateInfo describe(X509* cert) {
  CertificateInfo info;
  info.subject = name_text(X509_get_subject_name(cert));
  info.issuer = name_text(X509_get_issuer_name(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      info.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  if (info.serial.size() % 2 == 1) info.serial.insert(0, "0");
  info.not_before = time_of(X509_get0_notBefore(cert));
  info.not_after = time_of(X509_get0_notAfter(cert));
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS || g->type == GEN_URI) {
        const ASN1_IA5STRING* s =
            g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
        std::string v(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<size_t>(ASN1_STRING_length(s)));
        (g->type == GEN_DNS ? info.dns_sans : info.uri_sans).push_back(std::move(v));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (EVP_PKEY* key = X509_get0_pubkey(cert)) info.key_type = key_type(key);
  return info;
}

KeyPair::~KeyPair() {
  X509_free(leaf_);
  if (chain_ != nullptr) sk_X509_pop_free(chain_, X509_free);
  EVP_PKEY_free(key_);
}

std::shared_ptr<const KeyPair> KeyPair::load(const std::string& cert_file,
                                             const std::string& key_file) {
  const std::string cert = read_file(cert_file);
  const std::string key = read_file(key_file);
  return from_pem(cert, key, cert_file == key_file ? cert_file : cert_file + " and " + key_file);
}

std::shared_ptr<const KeyPair> KeyPair::from_pem(std::string_view cert_pem,
                                                 std::string_view key_pem,
                                                 const std::string& source) {
  ERR_clear_error();
  std::shared_ptr<KeyPair> kp(new KeyPair());
  BioPtr cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  kp->leaf_ = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
  if (kp->leaf_ == nullptr) {
    ERR_clear_error();
    throw std::runtime_error(fmt::format("{}: no PEM certificate found", source));
  }
  kp->chain_ = sk_X509_new_null();
  while (X509* x = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)) {
    sk_X509_push(kp->chain_, x);
  }
  ERR_clear_error();  // the end of the file
  BioPtr key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  kp->key_ = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (kp->key_ == nullptr) {
    ERR_clear_error();
    throw std::runtime_error(fmt::format("{}: no PEM private key found", source));
  }
  if (X509_check_private_key(kp->leaf_, kp->key_) != 1) {
    ERR_clear_error();
    throw std::runtime_error(
        fmt::format("{}: the private key does not match the certificate", source));
  }
  kp->info_ = describe(kp->leaf_);
  if (X509_cmp_current_time(X509_get0_notAfter(kp->leaf_)) < 0) {
    throw std::runtime_error(
        fmt::format("{}: the certificate expired on {}", source, date_of(kp->info_.not_after)));
  }
  return kp;
}

bool KeyPair::covers(std::string_view host) const {
  return X509_check_host(leaf_, host.data(), host.size(), 0, nullptr) == 1;
}

void check_ca_file(const std::string& path) {
  const std::string pem = read_file(path);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  ERR_clear_error();
  if (x == nullptr) throw std::runtime_error(fmt::format("{}: no PEM certificate found", path));
  X509_free(x);
}

PemPair self_signed(const std::vector<std::string>& names, int days) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), static_cast<long>(days) * 86400);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  const std::string cn = names.empty() ? std::string("sidecar") : names.front();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (!names.empty()) {
    std::string san;
    for (const std::string& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    if (X509_EXTENSION* ext =
            X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str())) {
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
  }
  X509_sign(x, key, EVP_sha256());
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cert_bio.get(), x);
  PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(x);
  EVP_PKEY_free(key);
  char* c = nullptr;
  char* k = nullptr;
  const long cn_len = BIO_get_mem_data(cert_bio.get(), &c);
  const long kn_len = BIO_get_mem_data(key_bio.get(), &k);
  return PemPair{"self-signed", std::string(c, static_cast<size_t>(cn_len)),
                 std::string(k, static_cast<size_t>(kn_len))};
}

}  // namespace sidecar::tls
