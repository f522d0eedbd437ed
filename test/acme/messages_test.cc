#include "acme/messages.h"

#include <gtest/gtest.h>

namespace sidecar::acme {
namespace {

using std::chrono::seconds;

// The examples of RFC 8555 7.1.
TEST(AcmeMessages, Directory) {
  Directory d;
  std::string why;
  ASSERT_TRUE(parse_directory(R"({
    "newNonce": "https://example.com/acme/new-nonce",
    "newAccount": "https://example.com/acme/new-account",
    "newOrder": "https://example.com/acme/new-order",
    "newAuthz": "https://example.com/acme/new-authz",
    "revokeCert": "https://example.com/acme/revoke-cert",
    "keyChange": "https://example.com/acme/key-change",
    "meta": {
      "termsOfService": "https://example.com/acme/terms/2017-5-30",
      "website": "https://www.example.com/",
      "caaIdentities": ["example.com"],
      "externalAccountRequired": false
    }
  })",
                              d, why))
      << why;
  EXPECT_EQ(d.new_nonce, "https://example.com/acme/new-nonce");
  EXPECT_EQ(d.new_order, "https://example.com/acme/new-order");
  EXPECT_EQ(d.terms_of_service, "https://example.com/acme/terms/2017-5-30");
  EXPECT_FALSE(d.external_account_required);
  EXPECT_FALSE(parse_directory(R"({"newNonce": "x"})", d, why));
  EXPECT_FALSE(parse_directory("[1]", d, why));
  EXPECT_FALSE(parse_directory("{", d, why));
}

TEST(AcmeMessages, Order) {
  Order o;
  std::string why;
  ASSERT_TRUE(parse_order(R"({
    "status": "valid",
    "expires": "2016-01-20T14:09:07.99Z",
    "identifiers": [ { "type": "dns", "value": "www.example.org" },
                     { "type": "dns", "value": "example.org" } ],
    "notBefore": "2016-01-01T00:00:00Z",
    "authorizations": [ "https://example.com/acme/authz/PAniVnsZcis",
                        "https://example.com/acme/authz/r4HqLzrSrpI" ],
    "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
    "certificate": "https://example.com/acme/cert/mAt3xBGaobw"
  })",
                          o, why))
      << why;
  EXPECT_EQ(o.status, "valid");
  EXPECT_EQ(o.identifiers.size(), 2u);
  EXPECT_EQ(o.authorizations.size(), 2u);
  EXPECT_EQ(o.certificate, "https://example.com/acme/cert/mAt3xBGaobw");
  EXPECT_TRUE(o.error.empty());

  Order invalid;
  ASSERT_TRUE(parse_order(R"({"status":"invalid","finalize":"f","authorizations":[],
    "error":{"type":"urn:ietf:params:acme:error:badCSR","detail":"no SANs"}})",
                          invalid, why));
  EXPECT_EQ(invalid.error.describe(), "badCSR: no SANs");
  EXPECT_FALSE(parse_order(R"({"status":"pending"})", o, why));
  EXPECT_FALSE(parse_order(R"({"status":7,"finalize":"f"})", o, why));
}

TEST(AcmeMessages, AuthorizationAndChallengeErrors) {
  Authorization a;
  std::string why;
  ASSERT_TRUE(parse_authorization(R"({
    "status": "invalid",
    "identifier": { "type": "dns", "value": "www.example.org" },
    "challenges": [
      { "type": "http-01", "url": "https://example.com/acme/chall/prV_B7yEyA4",
        "status": "invalid", "token": "DGyRejmCefe7v4NfDGDKfA",
        "error": { "type": "urn:ietf:params:acme:error:connection",
                   "detail": "connection refused" } },
      { "type": "dns-01", "url": "https://example.com/acme/chall/Rg5dV14Gh1Q",
        "status": "pending", "token": "DGyRejmCefe7v4NfDGDKfA" }
    ],
    "wildcard": false
  })",
                                  a, why))
      << why;
  EXPECT_EQ(a.identifier, "www.example.org");
  ASSERT_EQ(a.challenges.size(), 2u);
  EXPECT_EQ(a.challenges[0].token, "DGyRejmCefe7v4NfDGDKfA");
  EXPECT_EQ(a.challenges[0].error.describe(), "connection: connection refused");
  EXPECT_TRUE(a.challenges[1].error.empty());
  EXPECT_FALSE(parse_authorization(R"({"identifier":{}})", a, why));
}

TEST(AcmeMessages, ProblemWithSubproblems) {
  // RFC 8555 6.7.1.
  Problem p;
  ASSERT_TRUE(parse_problem(R"({
    "type": "urn:ietf:params:acme:error:malformed",
    "detail": "Some of the identifiers requested were rejected",
    "subproblems": [
      { "type": "urn:ietf:params:acme:error:malformed",
        "detail": "Invalid underscore in DNS name \"_example.org\"",
        "identifier": { "type": "dns", "value": "_example.org" } },
      { "type": "urn:ietf:params:acme:error:rejectedIdentifier",
        "detail": "This CA will not issue for \"example.net\"",
        "identifier": { "type": "dns", "value": "example.net" } }
    ]
  })",
                            p));
  EXPECT_EQ(p.short_type(), "malformed");
  ASSERT_EQ(p.subproblems.size(), 2u);
  EXPECT_EQ(p.subproblems[1],
            "example.net: rejectedIdentifier: This CA will not issue for "
            "\"example.net\"");
  EXPECT_FALSE(parse_problem("not json", p));
  Problem rate;
  ASSERT_TRUE(parse_problem(
      R"({"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down","status":429})",
      rate));
  EXPECT_EQ(rate.status, 429);
  EXPECT_EQ(rate.describe(), "rateLimited: slow down");
}

TEST(AcmeMessages, Account) {
  Account a;
  std::string why;
  ASSERT_TRUE(parse_account(R"({"status":"valid","contact":["mailto:ops@example.com"]})", a, why));
  EXPECT_EQ(a.contact, std::vector<std::string>{"mailto:ops@example.com"});
  EXPECT_FALSE(parse_account("{}", a, why));
}

TEST(AcmeMessages, RetryAfter) {
  // Sun, 06 Nov 1994 08:49:37 GMT
  const auto now = std::chrono::system_clock::from_time_t(784111777);
  EXPECT_EQ(parse_retry_after("120", now), seconds(120));
  EXPECT_EQ(parse_retry_after(" 0 ", now), seconds(0));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), seconds(60));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), seconds(0));
  EXPECT_EQ(parse_retry_after("99999999999", now), seconds(366 * 86400));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 4198 07:28:00 GMT", now), seconds(366 * 86400));
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Sun, 06 Foo 1994 08:50:37 GMT", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 25:50:37 GMT", now), std::nullopt);
}

TEST(AcmeMessages, PemChains) {
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  EXPECT_EQ(count_pem_certificates(cert), 1u);
  EXPECT_EQ(count_pem_certificates(cert + "\n" + cert), 2u);
  EXPECT_EQ(count_pem_certificates(""), 0u);
  EXPECT_EQ(count_pem_certificates("<html>"), 0u);
  EXPECT_EQ(count_pem_certificates(cert + "-----BEGIN PRIVATE KEY-----\n"), 0u);
  EXPECT_EQ(count_pem_certificates("-----BEGIN CERTIFICATE-----\nMIIB\n"), 0u);
}

}  // namespace
}  // namespace sidecar::acme
