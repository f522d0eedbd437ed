// YAML to Config: parsing and validation, with errors a user can act on.
//
// Every problem is reported as "FILE:LINE:COL: message" (1-based, pointing at
// the offending key or value). Loading does not stop at the first problem:
// all of them are collected and thrown together. Unknown keys, wrong types and
// out-of-range values are errors. Host names in addresses are resolved here,
// once (getaddrinfo). Thread-safe (no shared state).
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sidecar::config {

class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> messages);
  // One "FILE:LINE:COL: message" per problem.
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  std::vector<std::string> messages_;
};

// Reads and validates the YAML file at `path`. Throws ConfigError.
std::shared_ptr<const Config> load_file(const std::string& path);

// Validates YAML text; `source` names it in error messages. Throws ConfigError.
std::shared_ptr<const Config> load_string(std::string_view yaml, const std::string& source);

// The configuration used when no file is given: a listener on 0.0.0.0:8000
// proxying everything to the app at 127.0.0.1:8080, admin on 127.0.0.1:9901.
std::string_view default_yaml();

// "250ms", "10s", "5m", "1h", "1.5s", "0". Nothing on error.
std::optional<Duration> parse_duration(std::string_view text);

// "512", "64KiB", "1MiB", "2GiB", "10KB" (KB, MB, GB are powers of 1000).
// In bytes. Nothing on error.
std::optional<uint64_t> parse_size(std::string_view text);

// "127.0.0.1:80", "[::1]:80", "localhost:80" (resolved; first IPv4 address
// preferred). Nothing on error; `why` says what is wrong.
std::optional<Address> parse_address(std::string_view text, std::string& why);

}  // namespace sidecar::config
