#include "sync/git_text.h"

#include <cctype>

#include <fmt/format.h>

namespace sidecar::sync {
namespace {

bool is_hex(std::string_view s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

template <typename Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  size_t i = 0;
  while (i < text.size()) {
    size_t nl = text.find_first_of("\r\n", i);
    if (nl == std::string_view::npos) nl = text.size();
    fn(text.substr(i, nl - i));
    i = nl + 1;
  }
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The "user:password" of "scheme://user:password@host/...", and where it is.
std::optional<std::pair<size_t, size_t>> userinfo_span(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::nullopt;
  const size_t start = scheme + 3;
  const size_t slash = url.find('/', start);
  const std::string_view authority =
      url.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return std::make_pair(start, at);
}

}  // namespace

std::optional<UserPassword> url_password(std::string_view url) {
  const auto span = userinfo_span(url);
  if (!span) return std::nullopt;
  const std::string_view userinfo = url.substr(span->first, span->second);
  const size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return UserPassword{percent_decode(userinfo.substr(0, colon)),
                      percent_decode(userinfo.substr(colon + 1))};
}

std::string without_password(std::string_view url) {
  const auto span = userinfo_span(url);
  if (!span) return std::string(url);
  const std::string_view userinfo = url.substr(span->first, span->second);
  const size_t colon = userinfo.find(':');
  if (colon == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, span->first + colon)) +
         std::string(url.substr(span->first + span->second));
}

bool is_commit_id(std::string_view s) { return (s.size() == 40 || s.size() == 64) && is_hex(s); }

std::vector<RemoteRef> parse_ls_remote(std::string_view out) {
  std::vector<RemoteRef> refs;
  for_each_line(out, [&](std::string_view line) {
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return;
    const std::string_view id = line.substr(0, tab);
    const std::string_view name = trim(line.substr(tab + 1));
    if (!is_commit_id(id) || name.empty()) return;
    refs.push_back({std::string(id), std::string(name)});
  });
  return refs;
}

std::vector<std::string> ls_remote_patterns(const std::string& ref) {
  if (ref == "HEAD") return {"HEAD"};
  if (ref.starts_with("refs/")) return {ref, ref + "^{}"};
  return {"refs/heads/" + ref, "refs/tags/" + ref, "refs/tags/" + ref + "^{}"};
}

std::optional<Resolved> resolve_ref(const std::vector<RemoteRef>& refs, const std::string& ref) {
  std::vector<std::string> names;
  if (ref == "HEAD") {
    names = {"HEAD"};
  } else if (ref.starts_with("refs/")) {
    names = {ref};
  } else {
    names = {"refs/heads/" + ref, "refs/tags/" + ref};
  }
  for (const std::string& name : names) {
    const RemoteRef* found = nullptr;
    const RemoteRef* peeled = nullptr;
    for (const RemoteRef& r : refs) {
      if (r.name == name) found = &r;
      if (r.name == name + "^{}") peeled = &r;
    }
    if (found != nullptr) return Resolved{name, peeled != nullptr ? peeled->id : found->id};
  }
  return std::nullopt;
}

std::optional<UserPassword> parse_askpass(std::string_view body) {
  std::optional<std::string> user, password;
  for_each_line(body, [&](std::string_view line) {
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) return;
    const std::string_view key = trim(line.substr(0, eq));
    const std::string_view value = line.substr(eq + 1);
    if (key == "username") user = std::string(value);
    if (key == "password") password = std::string(value);
  });
  if (!user || !password) return std::nullopt;
  return UserPassword{*user, *password};
}

UserPassword parse_credentials_line(std::string_view line, const std::string& default_user) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) {
    line.remove_suffix(1);
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return {default_user, std::string(line)};
  return {std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))};
}

std::string credential_store_line(std::string_view url, const UserPassword& up) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos || scheme == 0) return {};
  std::string_view rest = url.substr(scheme + 3);
  const size_t path = rest.find('/');
  std::string_view authority = rest.substr(0, path);
  std::string_view tail = path == std::string_view::npos ? std::string_view() : rest.substr(path);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) return {};
  return fmt::format("{}://{}:{}@{}{}", url.substr(0, scheme), percent_encode(up.username),
                     percent_encode(up.password), authority, tail);
}

std::string url_username(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view authority = url.substr(scheme + 3);
  authority = authority.substr(0, authority.find('/'));
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view user = authority.substr(0, at);
  return std::string(user.substr(0, user.find(':')));
}

std::string redact(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (true) {
    const size_t scheme = text.find("://", i);
    if (scheme == std::string_view::npos) break;
    const size_t start = scheme + 3;
    size_t end = start;
    while (end < text.size() && text[end] != '/' && text[end] != '@' &&
           !std::isspace(static_cast<unsigned char>(text[end])) && text[end] != '\'' &&
           text[end] != '"') {
      ++end;
    }
    out.append(text.substr(i, start - i));
    if (end < text.size() && text[end] == '@') {
      const std::string_view userinfo = text.substr(start, end - start);
      const size_t colon = userinfo.find(':');
      const std::string_view scheme_name = text.substr(0, scheme);
      const bool ssh = scheme_name.ends_with("ssh");
      if (colon != std::string_view::npos) {
        out.append(userinfo.substr(0, colon));
        out.append(":***");
      } else if (ssh) {
        out.append(userinfo);  // a login name; ssh takes no password in the URL
      } else {
        out.append("***");  // a token given as the username
      }
      i = end;
    } else {
      i = start;
    }
  }
  out.append(text.substr(i));
  return out;
}

std::string git_error_summary(std::string_view err, size_t max) {
  std::vector<std::string_view> lines;
  for_each_line(err, [&](std::string_view line) {
    line = trim(line);
    if (line.empty()) return;
    // Progress and chatter.
    for (std::string_view skip :
         {"remote: Counting", "remote: Compressing", "remote: Enumerating", "remote: Total",
          "Receiving objects", "Resolving deltas", "From ", " * ", " + ", " - ", "Cloning into",
          "warning: redirecting", "hint: "}) {
      if (line.starts_with(skip)) return;
    }
    lines.push_back(line);
  });
  // Prefer what git calls errors.
  std::vector<std::string_view> errors;
  for (std::string_view l : lines) {
    if (l.starts_with("fatal: ") || l.starts_with("error: ")) errors.push_back(l);
  }
  const std::vector<std::string_view>& pick = errors.empty() ? lines : errors;
  std::string out;
  for (std::string_view l : pick) {
    if (l.starts_with("fatal: ")) l.remove_prefix(7);
    if (l.starts_with("error: ")) l.remove_prefix(7);
    if (!out.empty()) out += "; ";
    out += l;
  }
  out = redact(out);
  if (out.size() > max) {
    size_t cut = max;
    // Do not cut a UTF-8 sequence in two.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return out;
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace sidecar::sync
