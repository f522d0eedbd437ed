#include "config/reader.h"

#include <charconv>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "config/loader.h"
#include "core/json.h"

namespace sidecar::config {

void Reader::error(const YAML::Mark& mark, const std::string& message) {
  if (mark.line < 0) {
    errors_.push_back(fmt::format("{}: {}", source_, message));
  } else {
    errors_.push_back(
        fmt::format("{}:{}:{}: {}", source_, mark.line + 1, mark.column + 1, message));
  }
}

void Reader::error(const YAML::Node& node, const std::string& message) {
  error(node.IsDefined() ? node.Mark() : YAML::Mark::null_mark(), message);
}

std::string Reader::origin(const YAML::Node& node) const {
  if (!node.IsDefined() || node.Mark().line < 0) return source_;
  return fmt::format("{}:{}:{}", source_, node.Mark().line + 1, node.Mark().column + 1);
}

bool Reader::is_map(const YAML::Node& n, std::string_view what) {
  if (n.IsMap()) return true;
  error(n, fmt::format("{} must be a mapping", what));
  return false;
}

bool Reader::is_seq(const YAML::Node& n, std::string_view what) {
  if (n.IsSequence()) return true;
  error(n, fmt::format("{} must be a list", what));
  return false;
}

bool Reader::is_scalar(const YAML::Node& n, std::string_view what) {
  if (n.IsScalar()) return true;
  error(n, fmt::format("{} must be a single value", what));
  return false;
}

void Reader::check_keys(const YAML::Node& map, std::string_view where,
                        std::initializer_list<std::string_view> known) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: *it is a temporary
    if (!key.IsScalar()) {
      error(key, fmt::format("keys in {} must be strings", where));
      continue;
    }
    const std::string& k = key.Scalar();
    if (!seen.insert(k).second) error(key, fmt::format("'{}' is given twice in {}", k, where));
    bool ok = false;
    for (std::string_view name : known) ok = ok || name == k;
    if (!ok) {
      std::string list;
      for (std::string_view name : known) {
        if (!list.empty()) list += ", ";
        list += name;
      }
      error(key, fmt::format("unknown key '{}' in {} (expected one of: {})", k, where, list));
    }
  }
}

bool Reader::get_string(const YAML::Node& n, std::string_view what, std::string& out) {
  if (!is_scalar(n, what)) return false;
  out = n.Scalar();
  return true;
}

bool Reader::get_strings(const YAML::Node& n, std::string_view what,
                         std::vector<std::string>& out) {
  if (n.IsScalar()) {
    out = {n.Scalar()};
    return true;
  }
  if (!is_seq(n, what)) return false;
  std::vector<std::string> v;
  bool ok = true;
  for (size_t i = 0; i < n.size(); ++i) {
    std::string s;
    if (get_string(n[i], fmt::format("{}[{}]", what, i), s)) {
      v.push_back(std::move(s));
    } else {
      ok = false;
    }
  }
  if (ok) out = std::move(v);
  return ok;
}

bool Reader::get_uint(const YAML::Node& n, std::string_view what, uint64_t& out) {
  if (!is_scalar(n, what)) return false;
  const std::string& s = n.Scalar();
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    error(n, fmt::format("{} must be a non-negative integer, not '{}'", what, s));
    return false;
  }
  out = v;
  return true;
}

bool Reader::get_count(const YAML::Node& n, std::string_view what, uint32_t& out, uint64_t min,
                       uint64_t max) {
  uint64_t v = 0;
  if (!get_uint(n, what, v)) return false;
  if (v < min || v > max) {
    error(n, fmt::format("{} must be between {} and {}", what, min, max));
    return false;
  }
  out = static_cast<uint32_t>(v);
  return true;
}

bool Reader::get_double(const YAML::Node& n, std::string_view what, double& out, double min,
                        double max) {
  if (!is_scalar(n, what)) return false;
  const std::string& s = n.Scalar();
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(d >= min && d <= max)) {
    error(n, fmt::format("{} must be a number from {} to {}, not '{}'", what, min, max, s));
    return false;
  }
  out = d;
  return true;
}

bool Reader::get_bool(const YAML::Node& n, std::string_view what, bool& out) {
  if (!is_scalar(n, what)) return false;
  const std::string& s = n.Scalar();
  if (s == "true") {
    out = true;
  } else if (s == "false") {
    out = false;
  } else {
    error(n, fmt::format("{} must be true or false, not '{}'", what, s));
    return false;
  }
  return true;
}

bool Reader::get_duration(const YAML::Node& n, std::string_view what, Duration& out) {
  if (!is_scalar(n, what)) return false;
  auto d = parse_duration(n.Scalar());
  if (!d) {
    error(n, fmt::format("{}: invalid duration '{}' (expected a number and a unit: 250ms, "
                         "10s, 5m, 1h)",
                         what, n.Scalar()));
    return false;
  }
  out = *d;
  return true;
}

bool Reader::get_size(const YAML::Node& n, std::string_view what, uint64_t& out, uint64_t min,
                      uint64_t max) {
  if (!is_scalar(n, what)) return false;
  auto s = parse_size(n.Scalar());
  if (!s) {
    error(n, fmt::format("{}: invalid size '{}' (expected bytes or a unit: 512, 64KiB, 1MiB)", what,
                         n.Scalar()));
    return false;
  }
  if (*s < min || *s > max) {
    error(n, fmt::format("{} must be between {} and {} bytes", what, min, max));
    return false;
  }
  out = *s;
  return true;
}

bool Reader::get_size32(const YAML::Node& n, std::string_view what, uint32_t& out, uint64_t min,
                        uint64_t max) {
  uint64_t v = 0;
  if (!get_size(n, what, v, min, std::min<uint64_t>(max, UINT32_MAX))) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

bool Reader::get_address(const YAML::Node& n, std::string_view what, Address& out) {
  if (!is_scalar(n, what)) return false;
  std::string why;
  auto a = parse_address(n.Scalar(), why);
  if (!a) {
    error(n, fmt::format("{}: {}", what, why));
    return false;
  }
  out = *a;
  return true;
}

bool Reader::get_signal(const YAML::Node& n, std::string_view what, int& out) {
  static const std::pair<std::string_view, int> kSignals[] = {
      {"SIGHUP", 1},   {"SIGINT", 2},   {"SIGQUIT", 3},  {"SIGUSR1", 10},
      {"SIGUSR2", 12}, {"SIGTERM", 15}, {"SIGWINCH", 28}};
  std::string s;
  if (!get_string(n, what, s)) return false;
  for (const auto& [name, number] : kSignals) {
    if (s == name || s == name.substr(3)) {
      out = number;
      return true;
    }
  }
  error(n, fmt::format("{}: unknown signal '{}' (SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, SIGINT, "
                       "SIGQUIT, SIGWINCH)",
                       what, s));
  return false;
}

bool Reader::get_enum(const YAML::Node& n, std::string_view what, std::string& out,
                      std::initializer_list<std::string_view> choices) {
  std::string s;
  if (!get_string(n, what, s)) return false;
  for (std::string_view c : choices) {
    if (c == s) {
      out = s;
      return true;
    }
  }
  std::string list;
  for (std::string_view c : choices) {
    if (!list.empty()) list += ", ";
    list += c;
  }
  error(n, fmt::format("{} must be one of {}, not '{}'", what, list, s));
  return false;
}

namespace {

// Expands one scalar; false (with `why`) on an unset variable or bad syntax.
bool expand(const std::string& in, std::string& out, std::string& why) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$') {
      out += in[i];
      continue;
    }
    if (in.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 2;
      continue;
    }
    if (in.compare(i, 2, "${") != 0) {
      out += '$';
      continue;
    }
    const size_t close = in.find('}', i + 2);
    if (close == std::string::npos) {
      why = "unclosed ${ (write $${ for a literal ${)";
      return false;
    }
    const std::string body = in.substr(i + 2, close - i - 2);
    const size_t dflt = body.find(":-");
    const std::string name = body.substr(0, dflt);
    bool valid = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char c : name) {
      valid = valid && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_');
    }
    if (!valid) {
      why = fmt::format("'${{{}}}' is not a variable name (letters, digits, _)", body);
      return false;
    }
    const char* value = std::getenv(name.c_str());
    if (dflt != std::string::npos) {
      out += value != nullptr && *value != 0 ? std::string(value) : body.substr(dflt + 2);
    } else if (value != nullptr) {
      out += value;
    } else {
      why = fmt::format("environment variable {} is not set (use ${{{}:-default}} for a default)",
                        name, name);
      return false;
    }
    i = close;
  }
  return true;
}

void expand_node(YAML::Node n, Reader& reader, std::string& scratch) {
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (s.find('$') == std::string::npos) return;
    std::string why;
    if (!expand(s, scratch, why)) {
      reader.error(n, why);
      return;
    }
    if (scratch != s) n = scratch;  // keeps the node's position
  } else if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) expand_node(n[i], reader, scratch);
  } else if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) expand_node(it->second, reader, scratch);
  }
}

bool secret_key(std::string_view k) {
  return k.find("password") != std::string_view::npos ||
         k.find("secret") != std::string_view::npos || k.find("token") != std::string_view::npos ||
         k.find("private_key") != std::string_view::npos;
}

void to_json(const YAML::Node& n, std::string& out, bool redact) {
  if (n.IsMap()) {
    out += '{';
    bool first = true;
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!first) out += ',';
      first = false;
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      core::append_json_string(out, key);
      out += ':';
      to_json(it->second, out, secret_key(key));
    }
    out += '}';
  } else if (n.IsSequence()) {
    out += '[';
    for (size_t i = 0; i < n.size(); ++i) {
      if (i > 0) out += ',';
      to_json(n[i], out, redact);
    }
    out += ']';
  } else if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (redact) {
      out += "\"[redacted]\"";
      return;
    }
    if (s == "true" || s == "false") {
      out += s;
      return;
    }
    if (core::is_json_number(s)) {
      out += s;
      return;
    }
    core::append_json_string(out, s);
  } else {
    out += "null";
  }
}

}  // namespace

void expand_env(YAML::Node root, Reader& reader) {
  std::string scratch;
  expand_node(root, reader, scratch);
}

std::string yaml_to_json(const YAML::Node& node) {
  std::string out;
  to_json(node, out, false);
  return out;
}

}  // namespace sidecar::config
