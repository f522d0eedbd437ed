// Base64 [RFC 4648]: section 4 (standard alphabet, `+/`, padded with `=`)
// and section 5 (URL- and filename-safe alphabet, `-_`, unpadded: JOSE
// [RFC 7515 2], ACME). The one implementation the modules share (etcd's
// JSON gateway, JWT, ACME, htpasswd and Basic credentials).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace sidecar::core {

// Standard alphabet, padded to a multiple of 4.
std::string base64_encode(std::string_view bytes);
// URL-safe alphabet, no padding.
std::string base64url_encode(std::string_view bytes);

// Decode into `out`. Up to two trailing `=` are accepted and not required;
// no whitespace. False on a byte outside the alphabet (an `=` elsewhere
// included) or a length no encoding has (4n + 1 characters).
bool base64_decode(std::string_view text, std::string& out);
bool base64url_decode(std::string_view text, std::string& out);

}  // namespace sidecar::core
