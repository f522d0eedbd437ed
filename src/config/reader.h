// The helpers every config parser uses: typed getters that report problems
// as "FILE:LINE:COL: message" and keep going, so a user sees every mistake
// at once. The core loader (loader.cc), each HTTP filter and each module
// that owns a top-level key (DESIGN.md "Subsystems beside the data path")
// parse their part of the YAML with one of these.
//
// Conventions of every getter: `n` is the node to read, `what` names it in
// messages ("listeners[0].address"); on a problem the getter records an
// error at the node, leaves `out` unchanged and returns false.
//
// Thread safety: one Reader per load; not shared between threads.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/config.h"

namespace sidecar::config {

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  // Records "SOURCE:LINE:COL: message" (or "SOURCE: message" without a position).
  void error(const YAML::Mark& mark, const std::string& message);
  void error(const YAML::Node& node, const std::string& message);
  const std::vector<std::string>& errors() const { return errors_; }
  // "SOURCE:LINE:COL" of a node: kept in a config for problems found later
  // (a certificate file that does not load).
  std::string origin(const YAML::Node& node) const;
  const std::string& source() const { return source_; }

  bool is_map(const YAML::Node& n, std::string_view what);
  bool is_seq(const YAML::Node& n, std::string_view what);
  bool is_scalar(const YAML::Node& n, std::string_view what);
  // Reports keys of `map` outside `known`, and keys given twice.
  void check_keys(const YAML::Node& map, std::string_view where,
                  std::initializer_list<std::string_view> known);

  bool get_string(const YAML::Node& n, std::string_view what, std::string& out);
  // A list of strings; a single string is taken as a list of one.
  bool get_strings(const YAML::Node& n, std::string_view what, std::vector<std::string>& out);
  bool get_uint(const YAML::Node& n, std::string_view what, uint64_t& out);
  // An integer in [min, max].
  bool get_count(const YAML::Node& n, std::string_view what, uint32_t& out, uint64_t min,
                 uint64_t max);
  // A number in [min, max] ("0.25", "3").
  bool get_double(const YAML::Node& n, std::string_view what, double& out, double min, double max);
  bool get_bool(const YAML::Node& n, std::string_view what, bool& out);
  // "250ms", "10s", "5m", "1h" (see parse_duration).
  bool get_duration(const YAML::Node& n, std::string_view what, Duration& out);
  // Bytes: "512", "64KiB", "1MiB" (see parse_size), in [min, max].
  bool get_size(const YAML::Node& n, std::string_view what, uint64_t& out, uint64_t min,
                uint64_t max);
  bool get_size32(const YAML::Node& n, std::string_view what, uint32_t& out, uint64_t min,
                  uint64_t max);
  // "HOST:PORT" (resolved once, see parse_address).
  bool get_address(const YAML::Node& n, std::string_view what, Address& out);
  // "SIGHUP" or "HUP" (the signals a config may name).
  bool get_signal(const YAML::Node& n, std::string_view what, int& out);
  // One of `choices`; the error lists them.
  bool get_enum(const YAML::Node& n, std::string_view what, std::string& out,
                std::initializer_list<std::string_view> choices);

 private:
  std::string source_;
  std::vector<std::string> errors_;
};

// Replaces ${VAR} and ${VAR:-default} in every scalar value of `root` (not
// in keys) with the process environment; `$${` stands for a literal `${`.
// A variable that is unset and has no default is an error at its node;
// ${VAR:-default} uses the default when VAR is unset or empty (as sh does).
// Positions of expanded nodes stay those of the file.
void expand_env(YAML::Node root, Reader& reader);

// A YAML node as JSON (maps as objects, lists as arrays, scalars as strings,
// or numbers and booleans when they read as such); values of keys that hold
// secrets (names with "password", "secret", "token" or "private_key") become
// "[redacted]".
std::string yaml_to_json(const YAML::Node& node);

}  // namespace sidecar::config
