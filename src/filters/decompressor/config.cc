#include "filters/decompressor/config.h"

namespace sidecar::filters::decompressor {
namespace {

void parse_direction(const YAML::Node& n, const std::string& where, config::Reader& reader,
                     Direction& d, bool* advertise) {
  if (!n || n.IsNull() || !reader.is_map(n, where)) return;
  if (advertise != nullptr) {
    reader.check_keys(n, where, {"common_config", "advertise_accept_encoding"});
    if (n["advertise_accept_encoding"])
      reader.get_bool(n["advertise_accept_encoding"], where + ".advertise_accept_encoding",
                      *advertise);
  } else {
    reader.check_keys(n, where, {"common_config"});
  }
  const YAML::Node common = n["common_config"];
  const std::string cw = where + ".common_config";
  if (!common || common.IsNull() || !reader.is_map(common, cw)) return;
  reader.check_keys(common, cw, {"enabled", "ignore_no_transform_header"});
  if (common["enabled"]) reader.get_bool(common["enabled"], cw + ".enabled", d.enabled);
  if (common["ignore_no_transform_header"])
    reader.get_bool(common["ignore_no_transform_header"], cw + ".ignore_no_transform_header",
                    d.ignore_no_transform_header);
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  const std::string where = "decompressor";
  if (node && !node.IsNull() && !reader.is_map(node, where)) return c;
  if (node && node.IsMap()) {
    reader.check_keys(
        node, where,
        {"gzip", "brotli", "zstd", "request_direction_config", "response_direction_config",
         "max_inflate_ratio", "max_decompressed_bytes", "disabled"});
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string k = it->first.Scalar();
      const YAML::Node v = it->second;
      if (k == "gzip" || k == "brotli" || k == "zstd") {
        // No settings: a decoder takes what the sender chose, within bounds.
        if (!v.IsNull() && reader.is_map(v, where + "." + k))
          reader.check_keys(v, where + "." + k, {});
        c->encodings.push_back(k == "gzip"     ? compressor::Encoding::kGzip
                               : k == "brotli" ? compressor::Encoding::kBrotli
                                               : compressor::Encoding::kZstd);
      } else if (k == "request_direction_config") {
        parse_direction(v, where + "." + k, reader, c->request, &c->advertise_accept_encoding);
      } else if (k == "response_direction_config") {
        parse_direction(v, where + "." + k, reader, c->response, nullptr);
      } else if (k == "max_inflate_ratio") {
        reader.get_count(v, where + "." + k, c->max_inflate_ratio, 1, 10000);
      } else if (k == "max_decompressed_bytes") {
        reader.get_size(v, where + "." + k, c->max_decompressed_bytes, 1024, UINT32_MAX);
      } else if (k == "disabled") {
        reader.get_bool(v, where + "." + k, c->disabled);
      }
    }
  }
  if (c->encodings.empty())
    c->encodings = {compressor::Encoding::kGzip, compressor::Encoding::kBrotli,
                    compressor::Encoding::kZstd};
  return c;
}

}  // namespace sidecar::filters::decompressor
