// Config of the `compressor` filter (Envoy's compressor with its gzip,
// brotli and zstd libraries; nginx gzip), docs/filters.md "compressor":
//
//   filters:
//     - name: compressor
//       config:
//         gzip: { level: 6, window_bits: 15, memory_level: 8 }  # each encoding present is offered
//         brotli: { quality: 4, window_bits: 20 }
//         zstd: { level: 3 }
//         min_content_length: 1KiB     # default 30 bytes (Envoy's)
//         content_type: [ text/html, application/json ]  # default: Envoy's list
//
// With no encoding listed, all three are offered. Ties between equal
// Accept-Encoding q-values go to the first encoding in the config.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/registry.h"
#include "filters/compressor/encoder.h"

namespace sidecar::filters::compressor {

struct Config {
  std::vector<Encoding> encodings;  // in config order (server preference)
  EncoderSettings settings;
  uint64_t min_content_length = 30;        // bytes
  std::vector<std::string> content_types;  // media types, lower case, without parameters
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::compressor
