// Writes a yaml-cpp node tree back out as YAML (Kubernetes' block style) or
// as JSON, keeping what a Kubernetes object means: key order, and which
// scalars are strings.
//
// Why not YAML::Emitter: it drops the quotes of a quoted scalar, so the
// annotation value "8080" would come back as the integer 8080, which the API
// server rejects. Here a scalar that was quoted in the input (yaml-cpp tag
// "!"), or tagged !!str, stays a string: it is written plain when a YAML 1.1
// reader (sigs.k8s.io/yaml, as kubectl) would still read a string, else
// double-quoted. Plain scalars (tag "?", or nodes built in code with no tag)
// are written as they are. Use string_node() for a scalar that must stay a
// string.
//
// What is not kept: comments, anchors (aliases are written out in full),
// flow style and quoting style. Thread safety: pure functions.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace sidecar::k8s {

// A scalar node that is written as a string whatever its text ("8080",
// "false", "0.1.0").
YAML::Node string_node(const std::string& value);

// True when the scalar is a string (quoted in the input, !!str, or made by
// string_node), false for plain scalars.
bool is_string_scalar(const YAML::Node& node);

// Block YAML, two-space indent, sequence items at their key's indent (kubectl's
// `-o yaml` style), ending with a newline. Multi-line strings are literal
// blocks (`|`, `|-`, `|+`) when they can be.
std::string to_yaml(const YAML::Node& node);

// Compact JSON (RFC 8259). Plain scalars that read as null, true, false or a
// JSON number are written as such; every other scalar is a string.
std::string to_json(const YAML::Node& node);

// Deep equality of meaning: same types, same scalars (and string-ness), maps
// with the same keys and equal values in any order, sequences in order.
bool deep_equal(const YAML::Node& a, const YAML::Node& b);

}  // namespace sidecar::k8s
