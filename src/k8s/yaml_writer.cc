#include "k8s/yaml_writer.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "core/json.h"

namespace sidecar::k8s {
namespace {

constexpr std::string_view kStringTag = "tag:yaml.org,2002:str";

// The words a YAML 1.1 reader turns into null or a bool (go-yaml v2, which
// sigs.k8s.io/yaml and so kubectl use).
bool is_keyword(std::string_view s) {
  static constexpr std::string_view kWords[] = {
      "~",   "null", "Null", "NULL", "y",    "Y",     "yes",   "Yes",   "YES",  "n",   "N",  "no",
      "No",  "NO",   "true", "True", "TRUE", "false", "False", "FALSE", "on",   "On",  "ON", "off",
      "Off", "OFF",  ".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan",  ".NaN", ".NAN"};
  return std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords);
}

// Could a YAML 1.1 reader take this plain scalar for a number, a base-60
// number or a date? Conservative: anything starting like a number and made
// only of the characters numbers are written with, or starting with a date.
bool looks_numeric(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') i = 1;
  if (i < s.size() && s[i] == '.') ++i;
  if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  auto digit = [&](size_t k) {
    return k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]));
  };
  if (s.size() >= 10 && digit(0) && digit(1) && digit(2) && digit(3) && s[4] == '-') return true;
  constexpr std::string_view kNumberChars = "0123456789+-._:abcdefABCDEFxXoO";
  return s.find_first_not_of(kNumberChars) == std::string_view::npos;
}

// Is `s` a plain scalar in block context that reads back as the same text?
bool plain_safe(std::string_view s) {
  if (s.empty()) return false;
  if (s.front() == ' ' || s.back() == ' ' || s.back() == ':') return false;
  constexpr std::string_view kIndicators = "?:,[]{}#&*!|>'\"%@`";
  if (kIndicators.find(s.front()) != std::string_view::npos) return false;
  if (s.front() == '-' && (s.size() == 1 || s[1] == ' ')) return false;
  if (s.substr(0, 3) == "---" || s.substr(0, 3) == "...") return false;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return s.find(": ") == std::string_view::npos && s.find(" #") == std::string_view::npos;
}

// A YAML 1.2 double-quoted scalar takes JSON's string syntax (YAML 1.2 is
// a superset of JSON).
void write_double_quoted(std::string& out, std::string_view s) { core::append_json_string(out, s); }

// A literal block keeps a multi-line string readable (a config file in a
// ConfigMap). Not for text a block cannot hold exactly.
bool literal_block_ok(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (s.front() == ' ' || s.front() == '\n') return false;
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return false;
  }
  // Trailing spaces on a line survive a literal block, but editors and
  // linters strip them; a quoted string is safer.
  return s.find(" \n") == std::string_view::npos;
}

void write_literal_block(std::string& out, std::string_view s, int indent) {
  size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
  out += trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+";
  std::string_view body = s.substr(0, s.size() - trailing);
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t nl = body.find('\n', pos);
    std::string_view line = body.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    out += '\n';
    if (!line.empty()) {
      out.append(indent, ' ');
      out += line;
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  out += '\n';  // ends the last line; kept blank lines follow (`|+`)
  for (size_t i = 1; i < trailing; ++i) out += '\n';
}

// Writes a scalar (or null) after "key: " or "- ".
void write_scalar(std::string& out, const YAML::Node& node, int indent) {
  if (node.IsNull()) {
    out += "null";
    return;
  }
  const std::string& s = node.Scalar();
  if (is_string_scalar(node)) {
    if (literal_block_ok(s)) {
      write_literal_block(out, s, indent);
    } else if (plain_safe(s) && !is_keyword(s) && !looks_numeric(s)) {
      out += s;
    } else {
      write_double_quoted(out, s);
    }
    return;
  }
  if (plain_safe(s)) {
    out += s;
  } else if (literal_block_ok(s)) {
    write_literal_block(out, s, indent);
  } else {
    write_double_quoted(out, s);
  }
}

bool is_empty_collection(const YAML::Node& node) {
  return (node.IsMap() || node.IsSequence()) && node.size() == 0;
}

void write_block(std::string& out, const YAML::Node& node, int indent);

void write_key(std::string& out, const YAML::Node& key) {
  if (key.IsScalar() || key.IsNull()) {
    write_scalar(out, key, 0);
  } else {
    out += to_json(key);  // a flow collection is a valid implicit key
  }
}

// Writes `node` as the value after "key:" or "-" (no space written yet).
void write_value(std::string& out, const YAML::Node& node, int indent, bool in_sequence) {
  if (node.IsMap() && node.size() > 0) {
    if (in_sequence) {
      out += ' ';  // first key on the dash's line
    } else {
      out += '\n';
      out.append(indent + 2, ' ');
    }
    write_block(out, node, indent + 2);
  } else if (node.IsSequence() && node.size() > 0) {
    // kubectl style: a sequence under a key sits at the key's indent.
    const int child = in_sequence ? indent + 2 : indent;
    out += '\n';
    out.append(child, ' ');
    write_block(out, node, child);
  } else if (is_empty_collection(node)) {
    out += node.IsMap() ? " {}" : " []";
  } else {
    out += ' ';
    write_scalar(out, node, indent + 2);
  }
}

// Writes a non-empty map or sequence whose first line starts at the current
// position (already indented), later lines at `indent`.
void write_block(std::string& out, const YAML::Node& node, int indent) {
  bool first = true;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!first) out.append(indent, ' ');
      first = false;
      write_key(out, kv.first);
      out += ':';
      write_value(out, kv.second, indent, false);
      if (out.back() != '\n') out += '\n';
    }
  } else {
    for (const auto& item : node) {
      if (!first) out.append(indent, ' ');
      first = false;
      out += '-';
      write_value(out, item, indent, true);
      if (out.back() != '\n') out += '\n';
    }
  }
}

bool json_literal(std::string_view s) {
  if (s == "true" || s == "false" || s == "null") return true;
  return core::is_json_number(s);
}

void write_json(std::string& out, const YAML::Node& node) {
  if (node.IsMap()) {
    out += '{';
    bool first = true;
    for (const auto& kv : node) {
      if (!first) out += ',';
      first = false;
      write_double_quoted(out, kv.first.IsScalar() ? kv.first.Scalar() : to_json(kv.first));
      out += ':';
      write_json(out, kv.second);
    }
    out += '}';
  } else if (node.IsSequence()) {
    out += '[';
    bool first = true;
    for (const auto& item : node) {
      if (!first) out += ',';
      first = false;
      write_json(out, item);
    }
    out += ']';
  } else if (!node.IsDefined() || node.IsNull()) {
    out += "null";
  } else if (!is_string_scalar(node) && (json_literal(node.Scalar()))) {
    out += node.Scalar();
  } else if (!is_string_scalar(node) && (node.Scalar() == "~" || node.Scalar() == "Null")) {
    out += "null";
  } else {
    write_double_quoted(out, node.Scalar());
  }
}

}  // namespace

YAML::Node string_node(const std::string& value) {
  YAML::Node node(value);
  node.SetTag("!");
  return node;
}

bool is_string_scalar(const YAML::Node& node) {
  return node.IsScalar() && (node.Tag() == "!" || node.Tag() == kStringTag);
}

std::string to_yaml(const YAML::Node& node) {
  std::string out;
  if (node.IsMap() && node.size() > 0) {
    write_block(out, node, 0);
  } else if (node.IsSequence() && node.size() > 0) {
    write_block(out, node, 0);
  } else if (is_empty_collection(node)) {
    out = node.IsMap() ? "{}\n" : "[]\n";
  } else {
    write_scalar(out, node, 0);
    out += '\n';
  }
  return out;
}

std::string to_json(const YAML::Node& node) {
  std::string out;
  write_json(out, node);
  return out;
}

bool deep_equal(const YAML::Node& a, const YAML::Node& b) {
  const bool a_null = !a.IsDefined() || a.IsNull();
  const bool b_null = !b.IsDefined() || b.IsNull();
  if (a_null || b_null) return a_null == b_null;
  if (a.Type() != b.Type()) return false;
  if (a.IsScalar()) return a.Scalar() == b.Scalar() && is_string_scalar(a) == is_string_scalar(b);
  if (a.size() != b.size()) return false;
  if (a.IsSequence()) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (!deep_equal(a[i], b[i])) return false;
    }
    return true;
  }
  for (const auto& kv : a) {
    if (!kv.first.IsScalar()) return false;
    const YAML::Node other = b[kv.first.Scalar()];  // const: looks up, never adds
    if (!other.IsDefined() || !deep_equal(kv.second, other)) return false;
  }
  return true;
}

}  // namespace sidecar::k8s
