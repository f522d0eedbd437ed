// JSON Web Tokens: parsing (RFC 7519, JWS compact serialization RFC 7515 7.1)
// and signature verification against a JSON Web Key Set (RFC 7517, RFC 7518)
// on OpenSSL 3, through libsidecar-crypto.so (crypto/crypto.h).
//
// Why not cjose: it builds keys with OpenSSL's deprecated RSA_/EC_KEY APIs,
// has no EdDSA, and parses with Jansson (a second JSON library next to
// Boost.JSON). JWK to EVP_PKEY is a few lines of EVP_PKEY_fromdata (crypto/library.cc).
//
// Untrusted input everywhere: sizes are bounded (kMaxTokenSize), JSON is
// parsed without exceptions (Boost.JSON with an error code, depth 32), and
// nothing here throws except std::bad_alloc. Fuzzed by test/fuzz/jwt_fuzz.cc.
//
// Thread safety: a parsed Jwks is immutable and shared between workers;
// verify() only reads it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/base64.h"

struct evp_pkey_st;

namespace sidecar::filters::jwt_authn {

// Longer tokens are refused before any decoding (bytes).
inline constexpr size_t kMaxTokenSize = 16 * 1024;

// The reason a token was not accepted; to_string() is the stable name used
// in metrics (reason="...") and %RESPONSE_CODE_DETAILS% (jwt_authn_<name>).
enum class JwtStatus : uint8_t {
  kOk,
  kMissing,            // no token where the provider looks
  kMalformed,          // not three base64url parts, or not JSON objects
  kTooLarge,           // longer than kMaxTokenSize
  kAlgNotAllowed,      // "none", unknown, or no key of that type
  kExpired,            // exp + clock skew < now
  kNotYetValid,        // nbf or iat - clock skew > now
  kBadIssuer,          // iss differs from the provider's issuer
  kBadAudience,        // no aud in the allowed list
  kUnknownKid,         // no key with the token's kid
  kNoKeys,             // the provider has no usable keys (JWKS not fetched)
  kBadSignature,       // no key verifies the signature
  kRequirementFailed,  // valid token, but not one the route requires
};
std::string_view to_string(JwtStatus status);

// A decoded JWT. `signing_input` is "header.payload" as received.
struct Jwt {
  std::string alg;
  std::string kid;
  std::string signing_input;
  std::string signature;    // decoded bytes
  std::string payload_b64;  // as received (forward_payload_header)
  std::string payload_json;
  boost::json::object payload;
  std::string iss;
  std::string sub;
  std::vector<std::string> aud;  // a string "aud" becomes a list of one
  std::optional<int64_t> exp, nbf, iat;
};

// Decodes `token` (no verification). kOk, kMalformed or kTooLarge.
JwtStatus parse_jwt(std::string_view token, Jwt& out);

// base64url (RFC 4648 5, core/base64.h).
using core::base64url_decode;
using core::base64url_encode;

// One key of a JWKS, as an OpenSSL public key (or an HMAC secret for kty
// "oct").
struct Jwk {
  std::string kid;
  std::string kty;  // RSA | EC | OKP | oct
  std::string alg;  // "" when the key does not say
  std::string crv;  // EC: P-256 | P-384 | P-521; OKP: Ed25519
  std::shared_ptr<evp_pkey_st> key;
  std::string secret;  // oct
};

struct Jwks {
  std::vector<Jwk> keys;
};

// Parses a JWKS {"keys":[...]} (or a single JWK object). Keys of unknown
// types or with bad parameters are skipped (`skipped` counts them); false
// with `why` when the document is not JSON or has no usable key.
bool parse_jwks(std::string_view json, Jwks& out, std::string& why, size_t* skipped = nullptr);

// Whether `alg` is one sidecar verifies: RS/PS 256/384/512, ES256/384/512,
// EdDSA, HS256/384/512. Never "none".
bool supported_alg(std::string_view alg);

// Verifies the signature of `jwt` with the keys of `jwks` that fit its alg
// (and kid, when the token names one). An RSA or EC key is never used as an
// HMAC secret (alg confusion). kOk, kAlgNotAllowed, kUnknownKid,
// kBadSignature or kNoKeys.
JwtStatus verify_signature(const Jwt& jwt, const Jwks& jwks);

// Checks exp/nbf/iat against `now` (seconds since the epoch) with `skew`
// seconds of tolerance. kOk, kExpired or kNotYetValid.
JwtStatus check_time(const Jwt& jwt, int64_t now, int64_t skew);

// A claim by path ("sub", "realm_access.roles"), or null.
const boost::json::value* find_claim(const boost::json::object& payload, std::string_view path);

// A claim's values as strings: a string as itself, numbers and booleans as
// their JSON text, an array as its string elements. Empty when none.
std::vector<std::string> claim_strings(const boost::json::value& v);

}  // namespace sidecar::filters::jwt_authn
