// The ACME server's objects [RFC 8555 7.1], read from its JSON answers, and
// the Retry-After header [RFC 9110 10.2.3]. Everything here reads untrusted
// input: nothing throws, unknown members are ignored, and a missing required
// member makes the parse fail with the reason (fuzzed: test/fuzz/acme_fuzz.cc).
//
// Thread safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidecar::acme {

// A problem document [RFC 7807, RFC 8555 6.7]: "urn:ietf:params:acme:error:<type>".
struct Problem {
  std::string type;
  std::string detail;
  int status = 0;
  std::vector<std::string> subproblems;  // "<identifier>: <type>: <detail>"
  bool empty() const { return type.empty() && detail.empty(); }
  // "rateLimited: too many certificates (...)": the short type and the detail.
  std::string describe() const;
  // The type without "urn:ietf:params:acme:error:".
  std::string_view short_type() const;
};

struct Directory {
  std::string new_nonce, new_account, new_order, revoke_cert, key_change;
  std::string terms_of_service;  // meta.termsOfService
  bool external_account_required = false;
};

struct Challenge {
  std::string type;  // "http-01", "dns-01", "tls-alpn-01"
  std::string url;
  std::string status;  // pending | processing | valid | invalid
  std::string token;
  Problem error;
};

struct Authorization {
  std::string identifier;  // the DNS name
  std::string status;      // pending | valid | invalid | deactivated | expired | revoked
  bool wildcard = false;
  std::vector<Challenge> challenges;
};

struct Order {
  std::string status;  // pending | ready | processing | valid | invalid
  std::vector<std::string> identifiers;
  std::vector<std::string> authorizations;  // URLs
  std::string finalize;
  std::string certificate;  // once valid
  Problem error;
};

struct Account {
  std::string status;  // valid | deactivated | revoked
  std::vector<std::string> contact;
};

// Each returns false with `why` when the text is not such an object.
bool parse_problem(std::string_view json, Problem& out);
bool parse_directory(std::string_view json, Directory& out, std::string& why);
bool parse_authorization(std::string_view json, Authorization& out, std::string& why);
bool parse_order(std::string_view json, Order& out, std::string& why);
bool parse_account(std::string_view json, Account& out, std::string& why);

// Retry-After: delay-seconds or an HTTP-date (IMF-fixdate), as a wait from
// `now` (0 for a date in the past). Nothing when it is neither.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

// The PEM certificates of `chain` (application/pem-certificate-chain
// [RFC 8555 9.1]): how many there are; 0 when it holds anything else than
// certificate blocks and whitespace.
size_t count_pem_certificates(std::string_view chain);

}  // namespace sidecar::acme
