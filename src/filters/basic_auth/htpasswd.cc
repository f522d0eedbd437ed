#include "filters/basic_auth/htpasswd.h"

#include <string.h>

#include <cstdint>

#include "core/base64.h"
#include "crypto/crypto.h"

namespace sidecar::filters::basic_auth {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Standard base64 (RFC 4648 4), padded to a multiple of 4, as htpasswd
// `{SHA}` entries and Basic credentials are written.
bool base64_decode_padded(std::string_view in, std::string& out) {
  return in.size() % 4 == 0 && core::base64_decode(in, out);
}

bool crypt_supported(std::string_view h) {
  for (std::string_view p : {"$2y$", "$2b$", "$2a$", "$5$", "$6$", "$y$"}) {
    if (h.starts_with(p)) return true;
  }
  return false;
}

}  // namespace

HashKind hash_kind(std::string_view hash) {
  return hash.starts_with("{SHA}") ? HashKind::kSha1 : HashKind::kCrypt;
}

bool parse_htpasswd(std::string_view text, std::vector<User>& out, std::string& why) {
  out.clear();
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    const std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line[0] == '#') continue;
    const std::string where = "line " + std::to_string(line_no) + ": ";
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      why = where + "expected 'user:hash'";
      return false;
    }
    User u{std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))};
    // Fields after the hash (Apache's and /etc/shadow's) are not ours.
    if (const size_t more = u.hash.find(':'); more != std::string::npos) u.hash.resize(more);
    if (u.hash.starts_with("{SHA}")) {
      std::string digest;
      if (!base64_decode_padded(std::string_view(u.hash).substr(5), digest) ||
          digest.size() != 20) {
        why = where + "{SHA} needs the base64 of a 20-byte SHA-1 digest";
        return false;
      }
    } else if (u.hash.starts_with("$apr1$") || u.hash.starts_with("$1$")) {
      why = where + "MD5 hashes ($apr1$, $1$) are not accepted; use bcrypt (htpasswd -B)";
      return false;
    } else if (!crypt_supported(u.hash)) {
      why = where +
            "the password is not hashed with bcrypt ($2y$), SHA-crypt ($5$, $6$), "
            "yescrypt ($y$) or {SHA}; plaintext and DES crypt are refused";
      return false;
    }
    for (const User& other : out) {
      if (other.name == u.name) {
        why = where + "user '" + u.name + "' is listed twice";
        return false;
      }
    }
    out.push_back(std::move(u));
  }
  return true;
}

bool verify(std::string_view hash, std::string_view password) {
  if (hash_kind(hash) == HashKind::kSha1) {
    const std::string d = crypto::library().digest(crypto::Hash::kSha1, password);
    std::string expected;
    if (!base64_decode_padded(hash.substr(5), expected) || expected.size() != d.size())
      return false;
    return crypto::constant_time_equal(expected, d);
  }
  return crypto::library().crypt_matches(hash, password);
}

bool decode_basic(std::string_view authorization, std::string& user, std::string& password) {
  // The scheme is case-insensitive [RFC 9110 11.1].
  if (authorization.size() < 6) return false;
  for (size_t i = 0; i < 5; ++i) {
    if ((authorization[i] | 0x20) != "basic"[i]) return false;
  }
  if (authorization[5] != ' ') return false;
  std::string_view b64 = trim(authorization.substr(6));
  std::string decoded;
  if (b64.empty() || !base64_decode_padded(b64, decoded)) return false;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  user = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  explicit_bzero(decoded.data(), decoded.size());
  return true;
}

}  // namespace sidecar::filters::basic_auth
