// etcd v3's JSON gateway (grpc-gateway in front of etcd's gRPC API, see
// https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/): the request bodies
// the registry sends and the answers it reads, without any I/O, so that the
// encoding is unit tested and the parsers fuzzed (test/fuzz/registry_fuzz.cc).
//
// The gateway's conventions, from the proto3 JSON mapping: `bytes` fields
// (keys, values) are standard base64 with padding [RFC 4648 4]; int64 fields
// (revisions, lease IDs, TTLs) are JSON strings ("12"), numbers are accepted
// too; fields at their zero value are left out (a watch event without
// "type" is a PUT, a keepalive answer without "TTL" means the lease is gone).
// Errors come as {"error": "...", "code": N, "message": "..."} (unary calls)
// or {"error": {"grpc_code": N, "message": "..."}} (inside a stream); N is
// a gRPC status code (5 NOT_FOUND, 16 UNAUTHENTICATED, ...).
//
// Every parser takes untrusted bytes, never throws, and returns false when
// the text is not the expected shape (an Error filled when it is a gateway
// error). Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/base64.h"

namespace sidecar::registry::etcd {

// Keys and values: standard base64 with padding [RFC 4648 4] (core/base64.h).
using core::base64_decode;
using core::base64_encode;

// The range_end that makes a range cover every key starting with `prefix`
// (the prefix with its last byte below 0xff incremented, as etcdctl --prefix);
// "\0" (every key) for an empty prefix.
std::string prefix_range_end(std::string_view prefix);

// Request bodies. Lease IDs and TTLs are int64 (seconds for TTLs).
std::string put_body(std::string_view key, std::string_view value, int64_t lease);
// A range of one key (`range_end` empty) or [key, range_end).
std::string range_body(std::string_view key, std::string_view range_end);
std::string lease_grant_body(int64_t ttl_seconds);
// /v3/lease/keepalive, /v3/lease/revoke, /v3/lease/timetolive.
std::string lease_id_body(int64_t id);
// /v3/watch: a create_request for [key, range_end) from `start_revision` (0: now).
std::string watch_create_body(std::string_view key, std::string_view range_end,
                              int64_t start_revision);
// /v3/auth/authenticate.
std::string authenticate_body(std::string_view name, std::string_view password);

// gRPC status codes the registry acts on.
inline constexpr int kNotFound = 5;
inline constexpr int kUnauthenticated = 16;

struct Error {
  int code = 0;  // gRPC status code
  std::string message;
};

struct KeyValue {
  std::string key;    // decoded
  std::string value;  // decoded
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct RangeResult {
  int64_t revision = 0;  // the store's revision when read (header.revision)
  std::vector<KeyValue> kvs;
};

struct LeaseResult {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds; <= 0: the lease does not exist (any more)
};

struct WatchEvent {
  bool is_delete = false;  // else a put
  KeyValue kv;
};

// One message of the /v3/watch stream.
struct WatchResponse {
  int64_t revision = 0;  // header.revision
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the start revision was compacted: read everything again
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};

// A gateway error document (either shape); false when `body` is not one.
bool parse_error(std::string_view body, Error& error);
// /v3/kv/range and /v3/kv/put answers (put: kvs stays empty).
bool parse_range(std::string_view body, RangeResult& out, Error& error);
// /v3/lease/grant, /v3/lease/timetolive, and /v3/lease/keepalive (whose
// answer is wrapped in {"result": ...}).
bool parse_lease(std::string_view body, LeaseResult& out, Error& error);
// /v3/auth/authenticate: the token.
bool parse_token(std::string_view body, std::string& token, Error& error);
// One line of the /v3/watch stream ({"result": {...}}).
bool parse_watch(std::string_view line, WatchResponse& out, Error& error);

// The value registered for an instance (docs/registry.md "The value").
struct Instance {
  std::string address;  // IP or host name
  uint16_t port = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> metadata;
  uint32_t weight = 1;
  std::string health = "passing";  // "passing" while registered (only ready apps are)
  std::string started_at;          // RFC 3339 UTC: when this registration was made
  bool operator==(const Instance&) const = default;
};

std::string encode_instance(const Instance& instance);
// False unless `json` is an object with a string address and a port in
// 1..65535; other fields are optional (unknown ones ignored).
bool decode_instance(std::string_view json, Instance& out);

}  // namespace sidecar::registry::etcd
