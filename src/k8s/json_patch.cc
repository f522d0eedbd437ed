#include "k8s/json_patch.h"

#include <string_view>
#include <vector>

#include "k8s/yaml_writer.h"

namespace sidecar::k8s {
namespace {

std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

void op(std::vector<std::string>& ops, std::string_view name, const std::string& path,
        const YAML::Node* value) {
  std::string o = "{\"op\":\"" + std::string(name) + "\",\"path\":" + to_json(string_node(path));
  if (value) o += ",\"value\":" + to_json(*value);
  o += '}';
  ops.push_back(std::move(o));
}

YAML::Node lookup(const YAML::Node& map, const std::string& key) {
  for (const auto& kv : map) {
    if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// Is `a` a subsequence of `b` (all of a's items, in order, among b's)?
bool subsequence(const YAML::Node& a, const YAML::Node& b) {
  size_t i = 0;
  for (size_t j = 0; j < b.size() && i < a.size(); ++j) {
    if (deep_equal(a[i], b[j])) ++i;
  }
  return i == a.size();
}

void diff(const YAML::Node& a, const YAML::Node& b, const std::string& path,
          std::vector<std::string>& ops) {
  if (deep_equal(a, b)) return;
  if (a.IsMap() && b.IsMap()) {
    for (const auto& kv : a) {
      const std::string key = kv.first.Scalar();
      if (!lookup(b, key).IsDefined()) op(ops, "remove", path + "/" + pointer_token(key), nullptr);
    }
    for (const auto& kv : b) {
      const std::string key = kv.first.Scalar();
      const YAML::Node old = lookup(a, key);
      const std::string child = path + "/" + pointer_token(key);
      if (!old.IsDefined()) {
        op(ops, "add", child, &kv.second);
      } else {
        diff(old, kv.second, child, ops);
      }
    }
    return;
  }
  if (a.IsSequence() && b.IsSequence()) {
    if (a.size() == b.size()) {
      for (size_t i = 0; i < a.size(); ++i) diff(a[i], b[i], path + "/" + std::to_string(i), ops);
      return;
    }
    if (a.size() < b.size() && subsequence(a, b)) {
      size_t i = 0;
      for (size_t j = 0; j < b.size(); ++j) {
        if (i < a.size() && deep_equal(a[i], b[j])) {
          ++i;
        } else {
          const YAML::Node item = b[j];
          op(ops, "add", path + "/" + std::to_string(j), &item);
        }
      }
      return;
    }
  }
  op(ops, "replace", path, &b);
}

}  // namespace

std::string json_patch(const YAML::Node& before, const YAML::Node& after) {
  std::vector<std::string> ops;
  diff(before, after, "", ops);
  std::string out = "[";
  for (size_t i = 0; i < ops.size(); ++i) {
    if (i) out += ',';
    out += ops[i];
  }
  out += ']';
  return out;
}

}  // namespace sidecar::k8s
