// Query parameters of an origin-form path, for the filters that take a
// credential from one (api_key and jwt_authn `from_params`, as Envoy's
// JwtProvider) and strip it before the request goes upstream.
//
// Names compare exactly; values are returned as they are in the path
// (not percent-decoded). Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sidecar::filters {

// The value of the first parameter `name` that has one ("a=1" in
// "/p?x&a=1"); nothing when there is none ("a" alone has no value).
std::optional<std::string_view> query_param(std::string_view path, std::string_view name);

// `path` without any parameter `name` (with or without a value); the rest
// keep their order, and "?" goes when nothing is left.
std::string without_param(std::string_view path, std::string_view name);

}  // namespace sidecar::filters
