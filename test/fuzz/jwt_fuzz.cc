// libFuzzer target for what jwt_authn reads from the network: tokens
// (base64url, the header and payload JSON, the signature input) and JWKS
// documents (RSA, EC, OKP and oct keys). The first byte chooses:
//   0: a token, verified against fixed keys (HS256, Ed25519);
//   1: a JWKS document;
//   2: "JWKS\ntoken": both parsed, the token verified against those keys.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "filters/jwt_authn/jwt.h"

using namespace sidecar::filters::jwt_authn;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

const Jwks& fixed_keys() {
  static const Jwks keys = [] {
    Jwks k;
    std::string why;
    check(parse_jwks(
        R"({"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},)"
        R"({"kty":"OKP","crv":"Ed25519","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})",
        k, why));
    return k;
  }();
  return keys;
}

void token(std::string_view text, const Jwks& keys) {
  Jwt jwt;
  const JwtStatus s = parse_jwt(text, jwt);
  if (s != JwtStatus::kOk) {
    check(s == JwtStatus::kMalformed || s == JwtStatus::kTooLarge);
    return;
  }
  check(!jwt.alg.empty());
  check(jwt.signing_input.size() < text.size());
  const JwtStatus v = verify_signature(jwt, keys);
  check(v == JwtStatus::kOk || v == JwtStatus::kAlgNotAllowed || v == JwtStatus::kUnknownKid ||
        v == JwtStatus::kBadSignature || v == JwtStatus::kNoKeys);
  check_time(jwt, 1700000000, 60);
  if (const auto* c = find_claim(jwt.payload, "a.b")) claim_strings(*c);
  // The payload was decoded from base64url: encoding it again gives back
  // the received text, minus padding and any non-canonical trailing bits.
  check(base64url_encode(jwt.payload_json).size() <= jwt.payload_b64.size() + 3);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      token(in, fixed_keys());
      break;
    case 1: {
      Jwks keys;
      std::string why;
      size_t skipped = 0;
      if (parse_jwks(in, keys, why, &skipped)) {
        check(!keys.keys.empty());
        for (const Jwk& k : keys.keys) check(k.key != nullptr || !k.secret.empty());
      } else {
        check(!why.empty());
      }
      break;
    }
    case 2: {
      const size_t nl = in.find('\n');
      if (nl == std::string_view::npos) break;
      Jwks keys;
      std::string why;
      parse_jwks(in.substr(0, nl), keys, why);
      token(in.substr(nl + 1), keys);
      break;
    }
  }
  return 0;
}
