#include "filters/compressor/config.h"

#include <fmt/format.h>

namespace sidecar::filters::compressor {
namespace {

// Envoy's default list of compressible types.
const char* const kDefaultTypes[] = {"application/javascript",
                                     "application/json",
                                     "application/xhtml+xml",
                                     "image/svg+xml",
                                     "text/css",
                                     "text/html",
                                     "text/plain",
                                     "text/xml"};

int get_int(const YAML::Node& n, const std::string& what, config::Reader& reader, int fallback,
            int min, int max) {
  uint32_t v = 0;
  if (!n) return fallback;
  if (!reader.get_count(n, what, v, static_cast<uint64_t>(min), static_cast<uint64_t>(max)))
    return fallback;
  return static_cast<int>(v);
}

bool settings_map(const YAML::Node& n, const std::string& what, config::Reader& reader) {
  if (n.IsNull()) return true;  // `gzip:` or `gzip: {}`
  return reader.is_map(n, what);
}

}  // namespace

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  const std::string where = "compressor";
  if (node && !node.IsNull() && !reader.is_map(node, where)) return c;
  if (node && node.IsMap()) {
    reader.check_keys(node, where,
                      {"gzip", "brotli", "zstd", "min_content_length", "content_type"});
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string k = it->first.Scalar();
      const YAML::Node v = it->second;
      EncoderSettings& s = c->settings;
      if (k == "gzip") {
        if (!settings_map(v, where + ".gzip", reader)) continue;
        if (v.IsMap()) {
          reader.check_keys(v, where + ".gzip", {"level", "window_bits", "memory_level"});
          s.gzip_level = get_int(v["level"], where + ".gzip.level", reader, s.gzip_level, 1, 9);
          s.gzip_window_bits = get_int(v["window_bits"], where + ".gzip.window_bits", reader,
                                       s.gzip_window_bits, 9, 15);
          s.gzip_memory_level = get_int(v["memory_level"], where + ".gzip.memory_level", reader,
                                        s.gzip_memory_level, 1, 9);
          // ISA-L serves the low levels and has no memory level: a key
          // that would change nothing is an error, not silently accepted.
          if (v["memory_level"] && uses_isal(s.gzip_level, s.gzip_window_bits)) {
            reader.error(v["memory_level"],
                         fmt::format("{}.gzip.memory_level: has no effect at level {} (levels "
                                     "1..{} with window_bits {}..15 are ISA-L's igzip; "
                                     "memory_level is zlib's): remove it",
                                     where, s.gzip_level, kIsalMaxLevel, kIsalMinWindowBits));
          }
        }
        c->encodings.push_back(Encoding::kGzip);
      } else if (k == "brotli") {
        if (!settings_map(v, where + ".brotli", reader)) continue;
        if (v.IsMap()) {
          reader.check_keys(v, where + ".brotli", {"quality", "window_bits"});
          s.brotli_quality =
              get_int(v["quality"], where + ".brotli.quality", reader, s.brotli_quality, 0, 11);
          s.brotli_window_bits = get_int(v["window_bits"], where + ".brotli.window_bits", reader,
                                         s.brotli_window_bits, 10, 24);
        }
        c->encodings.push_back(Encoding::kBrotli);
      } else if (k == "zstd") {
        if (!settings_map(v, where + ".zstd", reader)) continue;
        if (v.IsMap()) {
          reader.check_keys(v, where + ".zstd", {"level"});
          s.zstd_level = get_int(v["level"], where + ".zstd.level", reader, s.zstd_level, 1, 19);
        }
        c->encodings.push_back(Encoding::kZstd);
      } else if (k == "min_content_length") {
        reader.get_size(v, where + ".min_content_length", c->min_content_length, 0, UINT32_MAX);
      } else if (k == "content_type") {
        std::vector<std::string> types;
        if (reader.get_strings(v, where + ".content_type", types)) {
          for (std::string& t : types) {
            for (char& ch : t) {
              if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
            }
            if (t.find('/') == std::string::npos) {
              reader.error(v, fmt::format("{}.content_type: '{}' is not a media type", where, t));
            }
            c->content_types.push_back(std::move(t));
          }
        }
      }
    }
  }
  if (c->encodings.empty()) c->encodings = {Encoding::kGzip, Encoding::kBrotli, Encoding::kZstd};
  if (c->content_types.empty())
    c->content_types.assign(std::begin(kDefaultTypes), std::end(kDefaultTypes));
  return c;
}

}  // namespace sidecar::filters::compressor
