#include "acme/jose.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/json/parse.hpp>

namespace sidecar::acme {
namespace {

std::string field(const std::string& json, const char* key) {
  return std::string(boost::json::parse(json).as_object().at(key).as_string().c_str());
}

std::string decoded(const std::string& b64) {
  std::string out;
  EXPECT_TRUE(base64url_decode(b64, out)) << b64;
  return out;
}

TEST(Base64url, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64url(plain), encoded);
    EXPECT_EQ(decoded(encoded), plain);
  }
  // The URL-safe alphabet, no padding.
  EXPECT_EQ(base64url(std::string("\xfb\xff\xfe", 3)), "-__-");
  std::string out;
  EXPECT_TRUE(base64url_decode("Zg==", out));
  EXPECT_EQ(out, "f");
  EXPECT_FALSE(base64url_decode("Zm9v+", out));
  EXPECT_FALSE(base64url_decode("Z", out));
}

TEST(Jose, JwkHasTheThumbprintMembersInOrderAndThePublicKey) {
  const PrivateKey key = PrivateKey::generate("p256");
  const std::string jwk = jwk_json(key);
  EXPECT_EQ(jwk.rfind(R"({"crv":"P-256","kty":"EC","x":")", 0), 0u) << jwk;
  EXPECT_EQ(jwk.find(' '), std::string::npos);
  // x and y are the key's coordinates, 32 bytes each.
  const std::string x = decoded(field(jwk, "x")), y = decoded(field(jwk, "y"));
  ASSERT_EQ(x.size(), 32u);
  ASSERT_EQ(y.size(), 32u);
  BIGNUM* bx = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, &bx), 1);
  unsigned char buf[32];
  BN_bn2binpad(bx, buf, 32);
  BN_free(bx);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 32), x);
  // The thumbprint is SHA-256 (32 bytes), and the same for the same key.
  EXPECT_EQ(decoded(jwk_thumbprint(key)).size(), 32u);
  EXPECT_EQ(jwk_thumbprint(key), jwk_thumbprint(PrivateKey::from_pem(key.to_pem())));
  EXPECT_NE(jwk_thumbprint(key), jwk_thumbprint(PrivateKey::generate("p256")));
}

TEST(Jose, Es256SignatureVerifiesWithThePublicKey) {
  const PrivateKey key = PrivateKey::generate("p256");
  const std::string header =
      protected_header(key, "https://ca.example/acct/1", "nonce-1", "https://ca.example/order");
  EXPECT_EQ(field(header, "alg"), "ES256");
  EXPECT_EQ(field(header, "kid"), "https://ca.example/acct/1");
  EXPECT_EQ(field(header, "nonce"), "nonce-1");
  EXPECT_EQ(field(header, "url"), "https://ca.example/order");
  const std::string jws = sign_jws(key, header, R"({"a":1})");
  EXPECT_EQ(decoded(field(jws, "protected")), header);
  EXPECT_EQ(decoded(field(jws, "payload")), R"({"a":1})");
  const std::string rs = decoded(field(jws, "signature"));
  ASSERT_EQ(rs.size(), 64u);
  // R || S back to DER, verified by OpenSSL.
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(rs.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  const std::string input = field(jws, "protected") + "." + field(jws, "payload");
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key.get()), 1);
  EXPECT_EQ(EVP_DigestVerify(md, der, static_cast<size_t>(der_len),
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()),
            1);
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  // POST-as-GET: an empty payload [RFC 8555 6.3].
  EXPECT_EQ(field(sign_jws(key, header, ""), "payload"), "");
  // Without a kid: the JWK (newAccount).
  const std::string with_jwk = protected_header(key, "", "n", "https://ca.example/new-acct");
  EXPECT_NE(with_jwk.find(R"("jwk":{"crv":"P-256")"), std::string::npos) << with_jwk;
  EXPECT_EQ(with_jwk.find("kid"), std::string::npos);
}

TEST(Jose, AccountKeysMustBeP256) {
  const PrivateKey rsa = PrivateKey::generate("rsa2048");
  EXPECT_FALSE(rsa.is_p256());
  EXPECT_THROW(jwk_json(rsa), std::runtime_error);
  EXPECT_THROW(sign_jws(rsa, "{}", ""), std::runtime_error);
  EXPECT_THROW(PrivateKey::from_pem("not a key"), std::runtime_error);
  EXPECT_THROW(PrivateKey::generate("dsa"), std::runtime_error);
  EXPECT_FALSE(PrivateKey::generate("p384").is_p256());
}

TEST(Jose, CsrNamesEveryDomainAndIsSignedByTheKey) {
  for (const char* type : {"p256", "p384", "rsa2048"}) {
    const PrivateKey key = PrivateKey::generate(type);
    const std::string der = make_csr({"app.example.com", "www.example.com"}, key);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
    ASSERT_NE(req, nullptr) << type;
    EXPECT_EQ(X509_REQ_verify(req, key.get()), 1) << type;
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn));
    EXPECT_STREQ(cn, "app.example.com");
    STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
    auto* names =
        static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
    ASSERT_NE(names, nullptr);
    ASSERT_EQ(sk_GENERAL_NAME_num(names), 2);
    const GENERAL_NAME* second = sk_GENERAL_NAME_value(names, 1);
    ASSERT_EQ(second->type, GEN_DNS);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(second->d.dNSName)),
                          ASN1_STRING_length(second->d.dNSName)),
              "www.example.com");
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
  }
  EXPECT_THROW(make_csr({}, PrivateKey::generate("p256")), std::runtime_error);
}

}  // namespace
}  // namespace sidecar::acme
