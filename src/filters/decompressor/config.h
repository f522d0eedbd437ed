// Config of the `decompressor` filter (Envoy's
// envoy.filters.http.decompressor, with its gzip, brotli and zstd
// libraries in one filter), docs/filters.md "decompressor":
//
//   filters:
//     - name: decompressor
//       config:
//         gzip: {}                       # the encodings decoded; none listed: all three
//         brotli: {}
//         zstd: {}
//         request_direction_config:
//           common_config: { enabled: true, ignore_no_transform_header: false }
//           advertise_accept_encoding: true
//         response_direction_config:
//           common_config: { enabled: true, ignore_no_transform_header: false }
//         max_inflate_ratio: 100         # decoded bytes per encoded byte, at most
//         max_decompressed_bytes: 16MiB  # of one message body
//
// Per route (typed_per_filter_config): the same keys replace the
// listener's; `{ disabled: true }` turns the filter off there.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "config/registry.h"
#include "filters/compressor/encoder.h"

namespace sidecar::filters::decompressor {

struct Direction {
  bool enabled = true;
  bool ignore_no_transform_header = false;
};

struct Config {
  bool disabled = false;                        // a route's override
  std::vector<compressor::Encoding> encodings;  // in config order
  Direction request;
  Direction response;
  // Add the encodings to the request's Accept-Encoding (when responses are
  // decoded): the upstream may compress, the client gets identity.
  bool advertise_accept_encoding = true;
  uint32_t max_inflate_ratio = 100;  // Envoy's gzip default
  uint64_t max_decompressed_bytes = 16 * 1024 * 1024;
};

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader);

}  // namespace sidecar::filters::decompressor
