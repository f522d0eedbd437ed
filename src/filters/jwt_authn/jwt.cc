#include "filters/jwt_authn/jwt.h"

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "crypto/crypto.h"

namespace sidecar::filters::jwt_authn {
namespace {

namespace json = boost::json;

// A JSON object from untrusted text, without exceptions.
bool parse_object(std::string_view text, json::object& out) {
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 32;
  json::value v = json::parse(text, ec, {}, options);
  if (ec || !v.is_object()) return false;
  out = std::move(v.as_object());
  return true;
}

std::string string_member(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  return std::string(it->value().get_string());
}

// A NumericDate [RFC 7519 2]: integers and non-integral numbers (truncated).
bool numeric_date(const json::object& o, std::string_view key, std::optional<int64_t>& out,
                  bool& bad) {
  auto it = o.find(key);
  if (it == o.end()) return true;
  const json::value& v = it->value();
  if (v.is_int64()) {
    out = v.get_int64();
  } else if (v.is_uint64()) {
    out = v.get_uint64() > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX
                                                            : static_cast<int64_t>(v.get_uint64());
  } else if (v.is_double() && v.get_double() > -9.2e18 && v.get_double() < 9.2e18) {
    out = static_cast<int64_t>(v.get_double());
  } else {
    bad = true;
    return false;
  }
  return true;
}

crypto::PublicKey rsa_key(const json::object& o) {
  std::string n, e;
  if (!base64url_decode(string_member(o, "n"), n) || !base64url_decode(string_member(o, "e"), e))
    return nullptr;
  // 1024 bits at least (RFC 7518 3.3 asks for 2048; 1024 is refused below).
  if (n.size() < 128 || n.size() > 2048 || e.empty() || e.size() > 8) return nullptr;
  return crypto::library().rsa_public_key(n, e);
}

size_t ec_field_size(std::string_view crv) {
  if (crv == "P-256") return 32;
  if (crv == "P-384") return 48;
  if (crv == "P-521") return 66;
  return 0;
}

const char* ec_group(std::string_view crv) {
  if (crv == "P-256") return "prime256v1";
  if (crv == "P-384") return "secp384r1";
  return "secp521r1";
}

crypto::PublicKey ec_key(const json::object& o, const std::string& crv) {
  const size_t size = ec_field_size(crv);
  std::string x, y;
  if (size == 0 || !base64url_decode(string_member(o, "x"), x) ||
      !base64url_decode(string_member(o, "y"), y) || x.empty() || y.empty() || x.size() > size ||
      y.size() > size) {
    return nullptr;
  }
  // RFC 7518 6.2.1.2 wants each coordinate at the field's full length, but
  // some issuers drop leading zero bytes (PyJWT before 2.7 does, about one
  // key in 128): the same number, so it is padded back, as Envoy's
  // jwt_verify_lib (BN_bin2bn) accepts it.
  x.insert(0, size - x.size(), '\0');
  y.insert(0, size - y.size(), '\0');
  // An uncompressed point; decoding it checks that it lies on the curve.
  std::string point = "\x04" + x + y;
  return crypto::library().ec_public_key(ec_group(crv), point);
}

crypto::PublicKey okp_key(const json::object& o, const std::string& crv) {
  std::string x;
  if (crv != "Ed25519" || !base64url_decode(string_member(o, "x"), x) || x.size() != 32)
    return nullptr;
  return crypto::library().ed25519_public_key(x);
}

// The hash of an HS* alg; false for others.
bool hmac_hash(std::string_view alg, crypto::Hash& out) {
  if (alg == "HS256")
    out = crypto::Hash::kSha256;
  else if (alg == "HS384")
    out = crypto::Hash::kSha384;
  else if (alg == "HS512")
    out = crypto::Hash::kSha512;
  else
    return false;
  return true;
}

// The key type an alg needs (RFC 7518 3.1, RFC 8037 3.1).
std::string_view kty_of(std::string_view alg) {
  if (alg.starts_with("RS") || alg.starts_with("PS")) return "RSA";
  if (alg.starts_with("ES")) return "EC";
  if (alg.starts_with("HS")) return "oct";
  if (alg == "EdDSA") return "OKP";
  return {};
}

bool verify_digest(const Jwk& k, std::string_view alg, std::string_view input,
                   std::string_view sig) {
  return crypto::library().verify(k.key.get(), alg, input, sig);
}

bool verify_hmac(const Jwk& k, std::string_view alg, std::string_view input, std::string_view sig) {
  crypto::Hash hash;
  if (!hmac_hash(alg, hash) || k.secret.empty()) return false;
  const std::string mac = crypto::library().hmac(hash, k.secret, input);
  return !mac.empty() && crypto::constant_time_equal(mac, sig);
}

// Whether key `k` may verify a token signed with `alg`.
bool fits(const Jwk& k, std::string_view alg) {
  if (k.kty != kty_of(alg)) return false;
  if (!k.alg.empty() && k.alg != alg) return false;
  if (k.kty == "EC") {
    return (alg == "ES256" && k.crv == "P-256") || (alg == "ES384" && k.crv == "P-384") ||
           (alg == "ES512" && k.crv == "P-521");
  }
  return true;
}

}  // namespace

std::string_view to_string(JwtStatus status) {
  switch (status) {
    case JwtStatus::kOk:
      return "ok";
    case JwtStatus::kMissing:
      return "missing";
    case JwtStatus::kMalformed:
      return "malformed";
    case JwtStatus::kTooLarge:
      return "too_large";
    case JwtStatus::kAlgNotAllowed:
      return "alg_not_allowed";
    case JwtStatus::kExpired:
      return "expired";
    case JwtStatus::kNotYetValid:
      return "not_yet_valid";
    case JwtStatus::kBadIssuer:
      return "issuer_not_allowed";
    case JwtStatus::kBadAudience:
      return "audience_not_allowed";
    case JwtStatus::kUnknownKid:
      return "unknown_kid";
    case JwtStatus::kNoKeys:
      return "jwks_unavailable";
    case JwtStatus::kBadSignature:
      return "bad_signature";
    case JwtStatus::kRequirementFailed:
      return "requirement_failed";
  }
  return "unknown";
}

JwtStatus parse_jwt(std::string_view token, Jwt& out) {
  if (token.size() > kMaxTokenSize) return JwtStatus::kTooLarge;
  const size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return JwtStatus::kMalformed;
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return JwtStatus::kMalformed;
  std::string header_json;
  json::object header;
  if (!base64url_decode(token.substr(0, dot1), header_json) || !parse_object(header_json, header))
    return JwtStatus::kMalformed;
  out.payload_b64 = std::string(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!base64url_decode(out.payload_b64, out.payload_json) ||
      !parse_object(out.payload_json, out.payload) ||
      !base64url_decode(token.substr(dot2 + 1), out.signature)) {
    return JwtStatus::kMalformed;
  }
  out.alg = string_member(header, "alg");
  out.kid = string_member(header, "kid");
  if (out.alg.empty()) return JwtStatus::kMalformed;
  out.signing_input = std::string(token.substr(0, dot2));
  out.iss = string_member(out.payload, "iss");
  out.sub = string_member(out.payload, "sub");
  out.aud.clear();
  if (auto it = out.payload.find("aud"); it != out.payload.end()) {
    if (it->value().is_string()) {
      out.aud.emplace_back(it->value().get_string());
    } else if (it->value().is_array()) {
      for (const json::value& a : it->value().get_array()) {
        if (a.is_string()) out.aud.emplace_back(a.get_string());
      }
    } else {
      return JwtStatus::kMalformed;
    }
  }
  bool bad = false;
  numeric_date(out.payload, "exp", out.exp, bad);
  numeric_date(out.payload, "nbf", out.nbf, bad);
  numeric_date(out.payload, "iat", out.iat, bad);
  return bad ? JwtStatus::kMalformed : JwtStatus::kOk;
}

bool supported_alg(std::string_view alg) {
  static constexpr std::string_view kAlgs[] = {"RS256", "RS384", "RS512", "PS256", "PS384",
                                               "PS512", "ES256", "ES384", "ES512", "EdDSA",
                                               "HS256", "HS384", "HS512"};
  for (std::string_view a : kAlgs) {
    if (a == alg) return true;
  }
  return false;
}

bool parse_jwks(std::string_view text, Jwks& out, std::string& why, size_t* skipped) {
  json::object doc;
  if (!parse_object(text, doc)) {
    why = "not a JSON object";
    return false;
  }
  std::vector<const json::object*> items;
  if (auto it = doc.find("keys"); it != doc.end()) {
    if (!it->value().is_array()) {
      why = "\"keys\" is not an array";
      return false;
    }
    for (const json::value& k : it->value().get_array()) {
      if (k.is_object()) items.push_back(&k.get_object());
    }
  } else {
    items.push_back(&doc);
  }
  size_t bad = 0;
  out.keys.clear();
  for (const json::object* o : items) {
    Jwk k;
    k.kty = string_member(*o, "kty");
    k.kid = string_member(*o, "kid");
    k.alg = string_member(*o, "alg");
    k.crv = string_member(*o, "crv");
    const std::string use = string_member(*o, "use");
    if ((!use.empty() && use != "sig") || (!k.alg.empty() && !supported_alg(k.alg))) {
      ++bad;
      continue;
    }
    if (k.kty == "RSA") {
      k.key = rsa_key(*o);
    } else if (k.kty == "EC") {
      k.key = ec_key(*o, k.crv);
    } else if (k.kty == "OKP") {
      k.key = okp_key(*o, k.crv);
    } else if (k.kty == "oct") {
      if (!base64url_decode(string_member(*o, "k"), k.secret) || k.secret.empty()) k.secret.clear();
    }
    if (k.key == nullptr && k.secret.empty()) {
      ++bad;
      continue;
    }
    out.keys.push_back(std::move(k));
  }
  if (skipped != nullptr) *skipped = bad;
  if (out.keys.empty()) {
    why = items.empty() ? "no keys" : "no usable key";
    return false;
  }
  return true;
}

JwtStatus verify_signature(const Jwt& jwt, const Jwks& jwks) {
  if (!supported_alg(jwt.alg)) return JwtStatus::kAlgNotAllowed;
  if (jwks.keys.empty()) return JwtStatus::kNoKeys;
  bool any_fit = false;
  bool kid_seen = false;
  for (const Jwk& k : jwks.keys) {
    if (!jwt.kid.empty() && !k.kid.empty() && k.kid != jwt.kid) continue;
    kid_seen = true;
    if (!fits(k, jwt.alg)) continue;
    any_fit = true;
    const bool ok = k.kty == "oct" ? verify_hmac(k, jwt.alg, jwt.signing_input, jwt.signature)
                                   : verify_digest(k, jwt.alg, jwt.signing_input, jwt.signature);
    if (ok) return JwtStatus::kOk;
  }
  if (!kid_seen) return JwtStatus::kUnknownKid;
  return any_fit ? JwtStatus::kBadSignature : JwtStatus::kAlgNotAllowed;
}

JwtStatus check_time(const Jwt& jwt, int64_t now, int64_t skew) {
  // Saturating: a claim near INT64_MAX must not wrap.
  auto plus = [](int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; };
  auto minus = [](int64_t a, int64_t b) { return a < INT64_MIN + b ? INT64_MIN : a - b; };
  if (jwt.exp && plus(*jwt.exp, skew) < now) return JwtStatus::kExpired;
  if (jwt.nbf && minus(*jwt.nbf, skew) > now) return JwtStatus::kNotYetValid;
  if (jwt.iat && minus(*jwt.iat, skew) > now) return JwtStatus::kNotYetValid;
  return JwtStatus::kOk;
}

const json::value* find_claim(const json::object& payload, std::string_view path) {
  const json::object* o = &payload;
  while (true) {
    const size_t dot = path.find('.');
    auto it = o->find(path.substr(0, dot));
    if (it == o->end()) return nullptr;
    if (dot == std::string_view::npos) return &it->value();
    if (!it->value().is_object()) return nullptr;
    o = &it->value().get_object();
    path.remove_prefix(dot + 1);
  }
}

std::vector<std::string> claim_strings(const json::value& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.emplace_back(v.get_string());
  } else if (v.is_array()) {
    for (const json::value& e : v.get_array()) {
      if (e.is_string()) out.emplace_back(e.get_string());
    }
  } else if (v.is_number() || v.is_bool()) {
    out.push_back(json::serialize(v));
  }
  return out;
}

}  // namespace sidecar::filters::jwt_authn
