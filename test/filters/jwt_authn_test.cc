#include <gtest/gtest.h>

#include <chrono>

#include "config/loader.h"
#include "filters/jwt_authn/filter.h"
#include "filters/jwt_authn/jwt.h"
#include "filters/registry.h"
#include "jwt_keys.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

using jwt_authn::JwtStatus;
using testing::jwk;
using testing::jwks;
using testing::make_key;
using testing::sign;
using testing::TestKey;

int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string claims(const std::string& extra = "", int64_t exp_in = 600) {
  return "{\"iss\":\"https://issuer.example\",\"aud\":[\"api\"],\"sub\":\"alice\",\"exp\":" +
         std::to_string(now() + exp_in) + extra + "}";
}

JwtStatus verify(const std::string& token, const jwt_authn::Jwks& keys) {
  jwt_authn::Jwt jwt;
  const JwtStatus s = jwt_authn::parse_jwt(token, jwt);
  return s == JwtStatus::kOk ? jwt_authn::verify_signature(jwt, keys) : s;
}

TEST(Jwt, Base64urlRoundTrips) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "\xff\xfe\x00z"}) {
    std::string back;
    ASSERT_TRUE(jwt_authn::base64url_decode(jwt_authn::base64url_encode(s), back));
    EXPECT_EQ(back, s);
  }
  std::string out;
  EXPECT_FALSE(jwt_authn::base64url_decode("ab+/", out));  // base64, not base64url
  EXPECT_FALSE(jwt_authn::base64url_decode("a", out));
}

TEST(Jwt, ParseRefusesMalformedTokens) {
  jwt_authn::Jwt jwt;
  EXPECT_EQ(jwt_authn::parse_jwt("", jwt), JwtStatus::kMalformed);
  EXPECT_EQ(jwt_authn::parse_jwt("a.b", jwt), JwtStatus::kMalformed);
  EXPECT_EQ(jwt_authn::parse_jwt("a.b.c.d", jwt), JwtStatus::kMalformed);
  EXPECT_EQ(jwt_authn::parse_jwt("e30.e30.", jwt), JwtStatus::kMalformed);  // no alg
  EXPECT_EQ(jwt_authn::parse_jwt(std::string(20000, 'a'), jwt), JwtStatus::kTooLarge);
  const std::string header = jwt_authn::base64url_encode("{\"alg\":\"RS256\"}");
  EXPECT_EQ(jwt_authn::parse_jwt(header + "." + jwt_authn::base64url_encode("[1]") + ".", jwt),
            JwtStatus::kMalformed);
  EXPECT_EQ(jwt_authn::parse_jwt(
                header + "." + jwt_authn::base64url_encode("{\"exp\":\"x\"}") + ".", jwt),
            JwtStatus::kMalformed);
  ASSERT_EQ(jwt_authn::parse_jwt(header + "." +
                                     jwt_authn::base64url_encode(
                                         "{\"aud\":\"api\",\"exp\":1.5,\"a\":{\"b\":[\"x\"]}}") +
                                     ".",
                                 jwt),
            JwtStatus::kOk);
  EXPECT_EQ(jwt.aud, std::vector<std::string>{"api"});
  EXPECT_EQ(*jwt.exp, 1);
  ASSERT_NE(jwt_authn::find_claim(jwt.payload, "a.b"), nullptr);
  EXPECT_EQ(jwt_authn::claim_strings(*jwt_authn::find_claim(jwt.payload, "a.b"))[0], "x");
}

TEST(Jwt, VerifiesEveryAlgorithmAndRefusesTampering) {
  for (std::string alg : {"RS256", "PS256", "ES256", "ES384", "EdDSA", "HS256"}) {
    SCOPED_TRACE(alg);
    const TestKey k = make_key(alg, "k1");
    jwt_authn::Jwks keys;
    std::string why;
    ASSERT_TRUE(jwt_authn::parse_jwks(jwks({&k}), keys, why)) << why;
    const std::string token = sign(k, claims());
    EXPECT_EQ(verify(token, keys), JwtStatus::kOk);
    // Another payload under the same signature.
    const size_t d1 = token.find('.'), d2 = token.rfind('.');
    const std::string tampered = token.substr(0, d1 + 1) +
                                 jwt_authn::base64url_encode(claims(",\"admin\":true")) +
                                 token.substr(d2);
    EXPECT_EQ(verify(tampered, keys), JwtStatus::kBadSignature);
    // Unknown kid.
    EXPECT_EQ(verify(sign(k, claims(), "{\"alg\":\"" + alg + "\",\"kid\":\"other\"}"), keys),
              JwtStatus::kUnknownKid);
  }
}

TEST(Jwt, EcCoordinatesWithoutLeadingZerosAreAccepted) {
  // Some issuers (PyJWT before 2.7) drop an EC coordinate's leading zero
  // bytes: find a key whose x or y starts with one and strip it.
  for (int i = 0; i < 4000; ++i) {
    const TestKey k = make_key("ES256", "k1");
    const std::string full = jwk(k);
    const auto coordinate = [&](const std::string& name) {
      const size_t at = full.find("\"" + name + "\":\"") + name.size() + 4;
      return full.substr(at, full.find('"', at) - at);
    };
    std::string x, y;
    ASSERT_TRUE(jwt_authn::base64url_decode(coordinate("x"), x));
    ASSERT_TRUE(jwt_authn::base64url_decode(coordinate("y"), y));
    if (x[0] != '\0' && y[0] != '\0') continue;
    const auto strip = [](std::string v) { return v.erase(0, v.find_first_not_of('\0')); };
    const std::string short_jwk =
        "{\"keys\":[{\"kid\":\"k1\",\"alg\":\"ES256\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" +
        jwt_authn::base64url_encode(strip(x)) + "\",\"y\":\"" +
        jwt_authn::base64url_encode(strip(y)) + "\"}]}";
    jwt_authn::Jwks keys;
    std::string why;
    ASSERT_TRUE(jwt_authn::parse_jwks(short_jwk, keys, why)) << why;
    EXPECT_EQ(verify(sign(k, claims()), keys), JwtStatus::kOk);
    // Longer than the field is still refused.
    EXPECT_FALSE(jwt_authn::parse_jwks("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" +
                                           jwt_authn::base64url_encode(std::string(1, '\0') + x) +
                                           "\",\"y\":\"" + jwt_authn::base64url_encode(y) + "\"}]}",
                                       keys, why));
    return;
  }
  FAIL() << "no key with a leading zero coordinate in 4000 tries";
}

TEST(Jwt, RefusesNoneAndAlgorithmConfusion) {
  const TestKey rsa = make_key("RS256", "k1");
  jwt_authn::Jwks keys;
  std::string why;
  ASSERT_TRUE(jwt_authn::parse_jwks(jwks({&rsa}), keys, why));
  const std::string none = jwt_authn::base64url_encode("{\"alg\":\"none\"}") + "." +
                           jwt_authn::base64url_encode(claims()) + ".";
  EXPECT_EQ(verify(none, keys), JwtStatus::kAlgNotAllowed);
  // HS256 with the RSA key's public modulus as the secret: the RSA key never
  // serves as an HMAC secret.
  TestKey hs{nullptr, "HS256", "k1", testing::bn_param(rsa.key.get(), OSSL_PKEY_PARAM_RSA_N)};
  EXPECT_EQ(verify(sign(hs, claims()), keys), JwtStatus::kAlgNotAllowed);
  // An ES256 token against an RSA key.
  EXPECT_EQ(verify(sign(make_key("ES256", "k1"), claims()), keys), JwtStatus::kAlgNotAllowed);
}

TEST(Jwt, JwksSkipsBadKeysAndRefusesWeakRsa) {
  jwt_authn::Jwks keys;
  std::string why;
  EXPECT_FALSE(jwt_authn::parse_jwks("not json", keys, why));
  EXPECT_FALSE(jwt_authn::parse_jwks("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                                     keys, why));
  EXPECT_EQ(why, "no usable key");
  // A point not on the curve.
  EXPECT_FALSE(jwt_authn::parse_jwks("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" +
                                         jwt_authn::base64url_encode(std::string(32, 1)) +
                                         "\",\"y\":\"" +
                                         jwt_authn::base64url_encode(std::string(32, 2)) + "\"}",
                                     keys, why));
  const TestKey ok = make_key("ES256", "good");
  size_t skipped = 0;
  ASSERT_TRUE(jwt_authn::parse_jwks(
      "{\"keys\":[{\"kty\":\"what\"}," + jwk(ok) + ",{\"kty\":\"RSA\",\"use\":\"enc\"}]}", keys,
      why, &skipped));
  EXPECT_EQ(keys.keys.size(), 1u);
  EXPECT_EQ(skipped, 2u);
}

TEST(Jwt, TimeClaimsWithSkew) {
  jwt_authn::Jwt jwt;
  jwt.exp = 1000;
  EXPECT_EQ(jwt_authn::check_time(jwt, 1050, 60), JwtStatus::kOk);
  EXPECT_EQ(jwt_authn::check_time(jwt, 1061, 60), JwtStatus::kExpired);
  jwt.exp.reset();
  jwt.nbf = 2000;
  EXPECT_EQ(jwt_authn::check_time(jwt, 1950, 60), JwtStatus::kOk);
  EXPECT_EQ(jwt_authn::check_time(jwt, 1900, 60), JwtStatus::kNotYetValid);
  jwt.nbf = INT64_MAX;
  EXPECT_EQ(jwt_authn::check_time(jwt, 0, 60), JwtStatus::kNotYetValid);
}

// ---- the filter ----

struct Fixture {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const http::HttpFilterFactory> factory;
};

Fixture load(const std::string& filter_config, const std::string& route_extra = "") {
  register_builtin();
  Fixture f;
  f.config = config::load_string(R"(
clusters:
  - { name: a, endpoints: [ "127.0.0.1:1" ] }
  - { name: idp, endpoints: [ "127.0.0.1:2" ] }
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a)" + route_extra +
                                     R"( } ]
    filters:
      - name: jwt_authn
        config:
)" + filter_config,
                                 "t");
  f.factory = make_factory(f.config->listeners[0].filters[0]);
  return f;
}

std::string local(const std::string& jwks_json, const std::string& extra = "") {
  return R"(          providers:
            main:
              issuer: https://issuer.example
              audiences: [ api ]
              local_jwks: { inline_string: ')" +
         jwks_json + R"(' }
              claim_to_headers: [ { claim_name: sub, header_name: x-user } ]
              forward_payload_header: x-jwt-payload
)" + extra +
         R"(          rules:
            - match: { prefix: /public }
            - match: { prefix: / }
              requires: { provider_name: main }
)";
}

// A request head with one field (kept alive by `storage`).
void set_head(testing::TestCallbacks& r, std::string& storage, const std::string& field) {
  storage = "GET / HTTP/1.1\r\nHost: x\r\n" + field + "\r\n\r\n";
  http::RequestParser parser;
  r.head = {};
  ASSERT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
}

TEST(JwtAuthnFilter, AcceptsAValidTokenAndForwardsClaims) {
  const TestKey k = make_key("ES256", "k1");
  auto f = load(local(jwks({&k})));
  auto filter = f.factory->create();
  testing::TestCallbacks r;
  std::string storage;
  set_head(r, storage, "Authorization: Bearer " + sign(k, claims()));
  EXPECT_EQ(filter->on_request_headers(r), http::FilterStatus::kContinue);
  EXPECT_NE(r.log.find("-req x-user;-req x-jwt-payload;"), std::string::npos) << r.log;
  EXPECT_NE(r.log.find("-req authorization;"), std::string::npos) << r.log;  // forward: false
  EXPECT_NE(r.log.find("+req x-user=alice;"), std::string::npos) << r.log;
  EXPECT_EQ(r.metadata_map["jwt_authn.principal"], "https://issuer.example/alice");
  EXPECT_NE(r.metadata_map["jwt_authn.payload"].find("\"sub\":\"alice\""), std::string::npos);
  EXPECT_FALSE(r.response);
}

TEST(JwtAuthnFilter, RefusesWithTheReason) {
  const TestKey k = make_key("RS256", "k1");
  auto f = load(local(jwks({&k})));
  struct Case {
    std::string field;
    std::string detail;
    std::string challenge;
  };
  const Case cases[] = {
      {"X-Other: 1", "jwt_authn_missing", "Bearer realm=\"example.com\""},
      {"Authorization: Bearer " + sign(k, claims("", -3600)), "jwt_authn_expired",
       "Bearer realm=\"example.com\", error=\"invalid_token\""},
      {"Authorization: Bearer " + sign(k, "{\"iss\":\"https://issuer.example\",\"aud\":\"other\"}"),
       "jwt_authn_audience_not_allowed", ""},
      {"Authorization: Bearer " + sign(k, "{\"iss\":\"https://evil\",\"aud\":\"api\"}"),
       "jwt_authn_issuer_not_allowed", ""},
      {"Authorization: Bearer " + sign(k, claims(",\"nbf\":" + std::to_string(now() + 3600))),
       "jwt_authn_not_yet_valid", ""},
      {"Authorization: Bearer a.b.c", "jwt_authn_malformed", ""},
      {"Authorization: Bearer " + sign(make_key("RS256", "k1"), claims()),
       "jwt_authn_bad_signature", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.detail);
    auto filter = f.factory->create();
    testing::TestCallbacks r;
    std::string storage;
    set_head(r, storage, c.field);
    EXPECT_EQ(filter->on_request_headers(r), http::FilterStatus::kStopIteration);
    ASSERT_TRUE(r.response);
    EXPECT_EQ(r.response->status, 401);
    EXPECT_EQ(r.detail, c.detail);
    if (!c.challenge.empty()) {
      bool found = false;
      for (const auto& [n, v] : r.response->headers)
        found = found || (n == "www-authenticate" && v == c.challenge);
      EXPECT_TRUE(found);
    }
    EXPECT_EQ(r.response->body.find(c.field.substr(c.field.find(' ') + 1)), std::string::npos);
  }
}

TEST(JwtAuthnFilter, RulesRouteOverridesAndAllowMissing) {
  const TestKey k = make_key("EdDSA", "k1");
  auto f = load(local(jwks({&k})) + R"(          requirement_map:
            admins: { provider_and_audiences: { provider_name: main, audiences: [ admin ] } }
            optional: { allow_missing: {} }
)");
  testing::TestCallbacks r;
  std::string storage;
  set_head(r, storage, "X: 1");
  r.path_value = "/public/x";
  EXPECT_EQ(f.factory->create()->on_request_headers(r), http::FilterStatus::kContinue);

  // A route's requirement_name: a valid token for the wrong audience is a 403.
  auto per_route = config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    filters:
      - name: jwt_authn
        config:
)" + local(jwks({&k})) + R"(          requirement_map:
            admins: { provider_and_audiences: { provider_name: main, audiences: [ admin ] } }
            optional: { allow_missing: {} }
    routes:
      - { cluster: a, match: { prefix: /admin }, typed_per_filter_config: { jwt_authn: { requirement_name: admins } } }
      - { cluster: a, match: { prefix: /opt }, typed_per_filter_config: { jwt_authn: { requirement_name: optional } } }
      - { cluster: a, match: { prefix: /off }, typed_per_filter_config: { jwt_authn: { disabled: true } } }
)",
                                       "t");
  auto factory = make_factory(per_route->listeners[0].filters[0]);
  auto route = [&](size_t i) {
    return per_route->listeners[0].routes[i].per_filter_config[0].typed.get();
  };
  {
    testing::TestCallbacks r2;
    set_head(r2, storage, "Authorization: Bearer " + sign(k, claims()));
    r2.route_configs["jwt_authn"] = route(0);
    EXPECT_EQ(factory->create()->on_request_headers(r2), http::FilterStatus::kStopIteration);
    ASSERT_TRUE(r2.response);
    EXPECT_EQ(r2.response->status, 403);
    EXPECT_EQ(r2.detail, "jwt_authn_requirement_failed");
  }
  {
    testing::TestCallbacks r2;
    set_head(r2, storage, "X: 1");
    r2.route_configs["jwt_authn"] = route(1);
    EXPECT_EQ(factory->create()->on_request_headers(r2), http::FilterStatus::kContinue);
    set_head(r2, storage, "Authorization: Bearer " + sign(k, claims("", -3600)));
    EXPECT_EQ(factory->create()->on_request_headers(r2), http::FilterStatus::kStopIteration);
    EXPECT_EQ(r2.detail, "jwt_authn_expired");
  }
  {
    testing::TestCallbacks r2;
    set_head(r2, storage, "X: 1");
    r2.route_configs["jwt_authn"] = route(2);
    EXPECT_EQ(factory->create()->on_request_headers(r2), http::FilterStatus::kContinue);
  }
}

TEST(JwtAuthnFilter, TokenFromAQueryParameterIsStripped) {
  const TestKey k = make_key("HS256", "k1");
  auto f = load(local(jwks({&k}), "              from_params: [ access_token ]\n"));
  testing::TestCallbacks r;
  std::string storage;
  set_head(r, storage, "X: 1");
  r.path_value = "/x?a=1&access_token=" + sign(k, claims()) + "&b=2";
  EXPECT_EQ(f.factory->create()->on_request_headers(r), http::FilterStatus::kContinue) << r.detail;
  EXPECT_NE(r.log.find("path /x?a=1&b=2;"), std::string::npos) << r.log;
}

TEST(JwtAuthnFilter, RemoteJwksWaitsForTheFetchAndRefetchesOnceForAnUnknownKid) {
  const TestKey k1 = make_key("ES256", "k1");
  const TestKey k2 = make_key("ES256", "k2");
  auto f = load(R"(          providers:
            main:
              issuer: https://issuer.example
              remote_jwks:
                http_uri: { uri: "http://idp.example/jwks", cluster: idp, timeout: 2s }
                cache_duration: 10m
          rules: [ { match: { prefix: / }, requires: { provider_name: main } } ]
)");
  std::string storage;
  testing::TestCallbacks r;
  set_head(r, storage, "Authorization: Bearer " + sign(k1, claims()));
  auto filter = f.factory->create();
  EXPECT_EQ(filter->on_request_headers(r), http::FilterStatus::kStopIteration);
  ASSERT_EQ(r.client.pending.size(), 1u);
  EXPECT_EQ(r.client.pending[0].cluster, "idp");
  EXPECT_EQ(r.client.pending[0].request.path, "/jwks");
  EXPECT_EQ(r.client.pending[0].request.authority, "idp.example");
  EXPECT_EQ(r.client.pending[0].request.timeout, std::chrono::seconds(2));
  http::ClientResponse answer;
  answer.status = 200;
  answer.body = jwks({&k1});
  r.client.pending[0].done(answer);
  r.io_context.run();
  EXPECT_EQ(r.continued, 1);
  EXPECT_FALSE(r.response);
  filter->on_stream_end();

  // k2 is unknown: one refetch, which still lacks it: 401.
  testing::TestCallbacks r2;
  set_head(r2, storage, "Authorization: Bearer " + sign(k2, claims()));
  auto filter2 = f.factory->create();
  EXPECT_EQ(filter2->on_request_headers(r2), http::FilterStatus::kStopIteration);
  ASSERT_EQ(r2.client.pending.size(), 1u);
  r2.client.pending[0].done(answer);
  r2.io_context.run();
  ASSERT_TRUE(r2.response);
  EXPECT_EQ(r2.detail, "jwt_authn_unknown_kid");
  // Within 30 s no other refetch: refused at once.
  testing::TestCallbacks r3;
  set_head(r3, storage, "Authorization: Bearer " + sign(k2, claims()));
  EXPECT_EQ(f.factory->create()->on_request_headers(r3), http::FilterStatus::kStopIteration);
  EXPECT_TRUE(r3.client.pending.empty());
  EXPECT_EQ(r3.detail, "jwt_authn_unknown_kid");
}

TEST(JwtAuthnFilter, AFailedFetchIsA401AndAStreamThatWentAwayIsNotTouched) {
  auto f = load(R"(          providers:
            main:
              remote_jwks: { http_uri: { uri: "http://idp/jwks", cluster: idp } }
          rules: [ { match: { prefix: / }, requires: { provider_name: main } } ]
)");
  const TestKey k = make_key("RS256", "k1");
  std::string storage;
  testing::TestCallbacks r;
  set_head(r, storage, "Authorization: Bearer " + sign(k, claims()));
  auto gone = f.factory->create();
  EXPECT_EQ(gone->on_request_headers(r), http::FilterStatus::kStopIteration);
  testing::TestCallbacks r2;
  set_head(r2, storage, "Authorization: Bearer " + sign(k, claims()));
  auto waiting = f.factory->create();
  EXPECT_EQ(waiting->on_request_headers(r2), http::FilterStatus::kStopIteration);
  EXPECT_TRUE(r2.client.pending.empty());  // one fetch for both
  gone->on_stream_end();
  http::ClientResponse failed;
  failed.error = "connect failed";
  r.client.pending[0].done(failed);
  r.io_context.run();
  r2.io_context.run();
  EXPECT_FALSE(r.response);
  ASSERT_TRUE(r2.response);
  EXPECT_EQ(r2.response->status, 401);
  EXPECT_EQ(r2.detail, "jwt_authn_jwks_unavailable");
}

TEST(JwtAuthnFilter, ConfigErrors) {
  auto expect_error = [](const std::string& filter_config, const std::string& what) {
    try {
      load(filter_config);
      FAIL() << "no error for " << what;
    } catch (const config::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error("          providers: { main: { issuer: x } }\n",
               "needs exactly one of local_jwks or remote_jwks");
  expect_error(
      "          providers: { main: { local_jwks: { filename: /x } } }\n"
      "          rules: [ { match: { prefix: / }, requires: { provider_name: nope } } ]\n",
      "no provider named 'nope'");
  expect_error(
      "          providers: { main: { remote_jwks: { http_uri: { uri: 'http://a/b', cluster: "
      "nope } } } }\n",
      "no cluster named 'nope'");
  expect_error("          providers: { main: { local_jwks: { filename: /x }, bogus: 1 } }\n",
               "bogus");
}

}  // namespace
}  // namespace sidecar::filters
