#include "filters/local_rate_limit/config.h"

#include <algorithm>

#include <fmt/format.h>

#include "http/http1_parser.h"

namespace sidecar::filters::local_rate_limit {
namespace {

constexpr std::chrono::milliseconds kMinFill{50};  // as Envoy: finer fills cost CPU for nothing

// max_tokens, tokens_per_fill, fill_interval of `n` over `out`; `where`
// names the node in errors.
void parse_bucket(const YAML::Node& n, const std::string& where, config::Reader& reader,
                  BucketSpec& out, bool need_max) {
  bool per_fill = false;
  if (auto v = n["max_tokens"]) {
    reader.get_count(v, where + ".max_tokens", out.max_tokens, 1, UINT32_MAX);
  } else if (need_max) {
    reader.error(n, where + " needs max_tokens");
  }
  if (auto v = n["tokens_per_fill"]) {
    per_fill = reader.get_count(v, where + ".tokens_per_fill", out.tokens_per_fill, 1, UINT32_MAX);
  }
  if (!per_fill && n["max_tokens"]) out.tokens_per_fill = out.max_tokens;
  if (auto v = n["fill_interval"]) {
    config::Duration d{};
    if (reader.get_duration(v, where + ".fill_interval", d)) {
      if (d < kMinFill) {
        reader.error(v, where + ".fill_interval must be at least 50ms");
      } else {
        out.fill_interval = d;
      }
    }
  }
}

}  // namespace

void load_descriptor_match(config::Reader& reader, const YAML::Node& d, const std::string& where,
                           size_t index, std::string& name, std::string& prefix,
                           DescriptorKey& key) {
  name = fmt::format("descriptor{}", index);
  if (auto v = d["name"]) {
    std::string given;
    if (reader.get_string(v, where + ".name", given)) {
      // A structured-field string in the RateLimit fields: keep it plain.
      const bool plain = !given.empty() && std::all_of(given.begin(), given.end(), [](char ch) {
        return http::is_tchar(static_cast<unsigned char>(ch));
      });
      if (plain) {
        name = given;
      } else {
        reader.error(v, where + ".name must be a token (letters, digits, -._)");
      }
    }
  }
  if (auto v = d["prefix"]) {
    if (reader.get_string(v, where + ".prefix", prefix) && (prefix.empty() || prefix[0] != '/')) {
      reader.error(v, where + ".prefix must start with /");
    }
  }
  if (auto v = d["key"]) {
    std::string text;
    if (reader.get_string(v, where + ".key", text) && !parse_key(text, key)) {
      reader.error(v, fmt::format("{}.key: '{}' is not a key (expected client_ip, "
                                  "header:<name> or path)",
                                  where, text));
    }
  }
}

bool parse_key(std::string_view text, DescriptorKey& out) {
  if (text == "client_ip") {
    out.kind = DescriptorKey::Kind::kClientIp;
    return true;
  }
  if (text == "path") {
    out.kind = DescriptorKey::Kind::kPath;
    return true;
  }
  constexpr std::string_view kHeader = "header:";
  if (text.starts_with(kHeader) && text.size() > kHeader.size()) {
    std::string name(text.substr(kHeader.size()));
    for (char& c : name) {
      if (!http::is_tchar(static_cast<unsigned char>(c))) return false;
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    out.kind = DescriptorKey::Kind::kHeader;
    out.header = std::move(name);
    return true;
  }
  return false;
}

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  const std::string where = "local_rate_limit";
  if (!node || !node.IsMap()) {
    reader.error(node, "the local_rate_limit filter needs a config mapping with max_tokens");
    return c;
  }
  reader.check_keys(node, where,
                    {"max_tokens", "tokens_per_fill", "fill_interval", "descriptors",
                     "xff_num_trusted_hops", "max_keys", "status", "rate_limit_headers"});
  parse_bucket(node, where, reader, c->bucket, true);
  if (auto v = node["xff_num_trusted_hops"])
    reader.get_count(v, where + ".xff_num_trusted_hops", c->xff_num_trusted_hops, 0, 64);
  if (auto v = node["max_keys"]) reader.get_uint(v, where + ".max_keys", c->max_keys);
  if (c->max_keys == 0) reader.error(node["max_keys"], where + ".max_keys must be at least 1");
  if (auto v = node["status"]) reader.get_count(v, where + ".status", c->status, 400, 599);
  if (auto v = node["rate_limit_headers"])
    reader.get_bool(v, where + ".rate_limit_headers", c->rate_limit_headers);
  if (auto list = node["descriptors"]) {
    if (reader.is_seq(list, where + ".descriptors")) {
      for (size_t i = 0; i < list.size(); ++i) {
        const YAML::Node d = list[i];
        const std::string dw = fmt::format("{}.descriptors[{}]", where, i);
        if (!reader.is_map(d, dw)) continue;
        reader.check_keys(
            d, dw, {"name", "prefix", "key", "max_tokens", "tokens_per_fill", "fill_interval"});
        Descriptor desc;
        load_descriptor_match(reader, d, dw, i, desc.name, desc.prefix, desc.key);
        desc.bucket = c->bucket;
        parse_bucket(d, dw, reader, desc.bucket, false);
        c->descriptors.push_back(std::move(desc));
      }
    }
  }
  if (c->descriptors.empty()) {
    Descriptor d;
    d.name = "default";
    d.bucket = c->bucket;
    c->descriptors.push_back(std::move(d));
  }
  for (Descriptor& d : c->descriptors) {
    if (d.bucket.max_tokens == 0) d.bucket = {1, 1, d.bucket.fill_interval};  // after errors
    d.buckets = std::make_shared<KeyedBuckets>(d.bucket, c->max_keys);
  }
  return c;
}

}  // namespace sidecar::filters::local_rate_limit
