// JSON Patch (RFC 6902) between two versions of a Kubernetes object, as a
// mutating admission webhook answers: applying the patch to `before` gives a
// document equal to `after` (RFC 8259 equality: maps in any order).
//
// Maps are compared key by key ("add", "remove", recursion into values);
// sequences element by element when their lengths match, as insertions
// ("add" at an index) when `before` is a subsequence of `after` (how inject
// adds containers, env entries and volumes), else replaced whole. Keys are
// escaped as RFC 6901 pointers ("sidecar.dev/version" ->
// "sidecar.dev~1version"). Thread safety: pure function.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace sidecar::k8s {

// The JSON array of operations ("[]" when the two are equal).
std::string json_patch(const YAML::Node& before, const YAML::Node& after);

}  // namespace sidecar::k8s
