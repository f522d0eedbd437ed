#include "filters/basic_auth/htpasswd.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>

namespace sidecar::filters::basic_auth {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool base64_decode(std::string_view in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  out.resize(in.size() / 4 * 3 + 1);
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding as zero bytes.
  if (!in.empty() && in.back() == '=') --len;
  if (in.size() > 1 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return true;
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
      if (!base64_decode(std::string_view(u.hash).substr(5), digest) || digest.size() != 20) {
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
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(password.data(), password.size(), d, &len, EVP_sha1(), nullptr);
    std::string expected;
    if (!base64_decode(hash.substr(5), expected) || expected.size() != len) return false;
    return CRYPTO_memcmp(expected.data(), d, len) == 0;
  }
  // crypt_rn wants C strings: a password with a NUL byte never matches.
  if (password.find('\0') != std::string_view::npos) return false;
  const std::string pw(password), setting(hash);
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_rn(pw.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  if (out == nullptr || out[0] == '*') return false;
  const size_t n = std::strlen(out);
  const bool ok = n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return ok;
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
  if (b64.empty() || !base64_decode(b64, decoded)) return false;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  user = decoded.substr(0, colon);
  password = decoded.substr(colon + 1);
  OPENSSL_cleanse(decoded.data(), decoded.size());
  return true;
}

}  // namespace sidecar::filters::basic_auth
