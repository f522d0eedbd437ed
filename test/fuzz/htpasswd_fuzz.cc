// libFuzzer target for what basic_auth parses from outside: htpasswd text
// (a file an operator or a tool writes) and the Authorization value a client
// sends. The input is both.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "filters/basic_auth/htpasswd.h"

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sidecar::filters::basic_auth;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<User> users;
  std::string why;
  if (parse_htpasswd(input, users, why)) {
    for (const User& u : users) {
      check(!u.name.empty() && u.name.find(':') == std::string::npos);
      check(u.name.find('\n') == std::string::npos && u.hash.find('\n') == std::string::npos);
      // Only {SHA} is cheap enough to verify here; crypt hashes are slow by design.
      if (hash_kind(u.hash) == HashKind::kSha1) verify(u.hash, "password");
    }
  } else {
    check(why.starts_with("line "));
  }
  std::string user, password;
  if (decode_basic(input, user, password)) check(user.find(':') == std::string::npos);
  return 0;
}
