#include "filters/basic_auth/config.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "filters/basic_auth/htpasswd.h"

namespace sidecar::filters::basic_auth {

std::shared_ptr<const void> parse(const YAML::Node& n, config::Reader& r) {
  auto c = std::make_shared<Config>();
  if (!r.is_map(n, "basic_auth")) return c;
  if (auto v = n["disabled"]) {
    r.check_keys(n, "basic_auth", {"disabled"});
    r.get_bool(v, "basic_auth.disabled", c->disabled);
    return c;
  }
  r.check_keys(n, "basic_auth", {"users", "forward_username_header", "realm", "forward"});
  if (auto u = n["users"]) {
    if (r.is_map(u, "basic_auth.users")) {
      r.check_keys(u, "basic_auth.users", {"filename", "inline_string"});
      if (u["filename"] && u["inline_string"]) {
        r.error(u, "basic_auth.users takes filename or inline_string, not both");
      } else if (auto v = u["filename"]) {
        if (r.get_string(v, "basic_auth.users.filename", c->users_file)) {
          // Checked now so that a typo fails the load; re-read on change later.
          std::ifstream in(c->users_file, std::ios::binary);
          std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
          std::vector<User> users;
          std::string why;
          if (!in.good() && !in.eof()) {
            r.error(v, fmt::format("basic_auth.users.filename: cannot read '{}'", c->users_file));
          } else if (!parse_htpasswd(text, users, why)) {
            r.error(v, fmt::format("basic_auth.users.filename: {}: {}", c->users_file, why));
          }
        }
      } else if (auto v = u["inline_string"]) {
        std::vector<User> users;
        std::string why;
        if (r.get_string(v, "basic_auth.users.inline_string", c->users_inline) &&
            !parse_htpasswd(c->users_inline, users, why)) {
          r.error(v, "basic_auth.users.inline_string: " + why);
        }
      } else {
        r.error(u, "basic_auth.users needs filename or inline_string");
      }
    }
  } else {
    r.error(n, "basic_auth needs users ({ filename: ... } or { inline_string: ... })");
  }
  if (auto v = n["forward_username_header"]) {
    if (r.get_string(v, "basic_auth.forward_username_header", c->forward_username_header)) {
      auto& h = c->forward_username_header;
      std::transform(h.begin(), h.end(), h.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      const bool token = !h.empty() && std::all_of(h.begin(), h.end(), [](unsigned char ch) {
        return std::isalnum(ch) || std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr;
      });
      if (!token) {
        r.error(v, "basic_auth.forward_username_header must be a header name");
        h.clear();
      }
    }
  }
  if (auto v = n["realm"]) {
    if (r.get_string(v, "basic_auth.realm", c->realm) &&
        c->realm.find_first_of("\"\\\r\n") != std::string::npos) {
      r.error(v, "basic_auth.realm must not hold quotes, backslashes or line breaks");
      c->realm = "sidecar";
    }
  }
  if (auto v = n["forward"]) r.get_bool(v, "basic_auth.forward", c->forward);
  return c;
}

}  // namespace sidecar::filters::basic_auth
