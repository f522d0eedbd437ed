#include "filters/rate_limit/config.h"

#include <algorithm>

#include <fmt/format.h>

#include "crypto/crypto.h"
#include "http/http1_parser.h"

namespace sidecar::filters::rate_limit {

// GCRA [the Generic Cell Rate Algorithm, as in ATM and redis-cell]: the key
// holds the theoretical arrival time (TAT, ms on Redis's clock). A request is
// admitted if TAT + interval - window <= now. Returns {admitted, remaining,
// retry_after_ms, reset_ms}.
const std::string& script() {
  static const std::string s = R"(local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if allow_at > now then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now))
return {1, math.floor((now - allow_at) / interval), 0, math.ceil(new_tat - now)}
)";
  return s;
}

const std::string& script_sha1() {
  static const std::string hex = [] {
    const std::string digest = crypto::library().digest(crypto::Hash::kSha1, script());
    std::string out;
    for (unsigned char b : digest) out += fmt::format("{:02x}", b);
    return out;
  }();
  return hex;
}

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  const std::string where = "rate_limit";
  if (!node || !node.IsMap()) {
    reader.error(node, "the rate_limit filter needs a config mapping with redis and descriptors");
    return c;
  }
  reader.check_keys(node, where,
                    {"redis", "timeout", "failure_mode_deny", "domain", "descriptors",
                     "xff_num_trusted_hops", "status"});
  if (auto r = node["redis"]) {
    if (reader.is_map(r, where + ".redis")) {
      reader.check_keys(r, where + ".redis", {"address"});
      if (auto a = r["address"]) {
        reader.get_address(a, where + ".redis.address", c->redis);
      } else {
        reader.error(r, where + ".redis needs an address");
      }
    }
  } else {
    reader.error(node, where + " needs redis: { address: HOST:PORT }");
  }
  if (auto v = node["timeout"]) {
    if (reader.get_duration(v, where + ".timeout", c->timeout) && c->timeout.count() <= 0)
      reader.error(v, where + ".timeout must be above 0");
  }
  if (auto v = node["failure_mode_deny"])
    reader.get_bool(v, where + ".failure_mode_deny", c->failure_mode_deny);
  if (auto v = node["domain"]) {
    if (reader.get_string(v, where + ".domain", c->domain) && c->domain.empty())
      reader.error(v, where + ".domain must not be empty");
  }
  if (auto v = node["xff_num_trusted_hops"])
    reader.get_count(v, where + ".xff_num_trusted_hops", c->xff_num_trusted_hops, 0, 64);
  if (auto v = node["status"]) reader.get_count(v, where + ".status", c->status, 400, 599);
  const YAML::Node list = node["descriptors"];
  if (!list) {
    reader.error(node, where + " needs descriptors");
  } else if (reader.is_seq(list, where + ".descriptors")) {
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node d = list[i];
      const std::string dw = fmt::format("{}.descriptors[{}]", where, i);
      if (!reader.is_map(d, dw)) continue;
      reader.check_keys(d, dw, {"name", "prefix", "key", "limit", "window"});
      Descriptor desc;
      local_rate_limit::load_descriptor_match(reader, d, dw, i, desc.name, desc.prefix, desc.key);
      if (auto v = d["limit"]) {
        reader.get_count(v, dw + ".limit", desc.limit, 1, UINT32_MAX);
      } else {
        reader.error(d, dw + " needs a limit");
      }
      if (auto v = d["window"]) {
        if (reader.get_duration(v, dw + ".window", desc.window) && desc.window.count() <= 0)
          reader.error(v, dw + ".window must be above 0");
      } else {
        reader.error(d, dw + " needs a window");
      }
      c->descriptors.push_back(std::move(desc));
    }
  }
  return c;
}

}  // namespace sidecar::filters::rate_limit
