// Answers to ACME HTTP-01 challenges [RFC 8555 8.3]: the ACME module puts
// the key authorization of a pending challenge here, and every plain HTTP
// listener answers `GET /.well-known/acme-challenge/<token>` with it before
// routing. Costs one relaxed load per request while nothing is pending.
//
// Thread safety: all functions from any thread.
#pragma once

#include <string>
#include <string_view>

namespace sidecar::tls {

inline constexpr std::string_view kAcmeChallengePrefix = "/.well-known/acme-challenge/";

void set_acme_challenge(const std::string& token, const std::string& key_authorization);
void clear_acme_challenge(const std::string& token);
// The key authorization for `token`, when a challenge for it is pending.
bool find_acme_challenge(std::string_view token, std::string& key_authorization);

}  // namespace sidecar::tls
