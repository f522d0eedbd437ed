// htpasswd files (Apache's format, as `htpasswd -B` / `-s` / `mkpasswd` write
// them): one "user:hash" per line, `#` comments and blank lines skipped.
//
// Hashes accepted: bcrypt (`$2y$`, `$2b$`, `$2a$`), SHA-crypt (`$5$`, `$6$`)
// and yescrypt (`$y$`, Debian's default for /etc/shadow), all verified by
// libxcrypt's crypt_rn; and `{SHA}` (base64 SHA-1, what Envoy's basic_auth
// takes; unsalted, accepted for compatibility). Refused: plaintext, DES
// crypt, MD5 (`$1$`, Apache's `$apr1$`): a file with them does not load.
//
// Comparisons are constant-time (crypto::constant_time_equal).
// Thread safety: the functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sidecar::filters::basic_auth {

struct User {
  std::string name;
  std::string hash;
};

enum class HashKind { kSha1, kCrypt };

// Parses the text of an htpasswd file; false with `why` ("line 3: ...").
bool parse_htpasswd(std::string_view text, std::vector<User>& out, std::string& why);

// The kind of a hash the parser accepted.
HashKind hash_kind(std::string_view hash);

// Whether `password` matches `hash`. kCrypt hashes are slow by design (tens
// of milliseconds for bcrypt at cost 10): call those off the event loop.
bool verify(std::string_view hash, std::string_view password);

// Decodes "Basic <base64(user:password)>" [RFC 7617]; false when malformed.
bool decode_basic(std::string_view authorization, std::string& user, std::string& password);

}  // namespace sidecar::filters::basic_auth
