// Streaming decoders for the `decompressor` filter: gzip (zlib, RFC 1952),
// br (brotli, RFC 7932) and zstd (RFC 8878), behind one interface; the
// counterpart of encoder.h (same Encoding values and tokens).
//
// Bounded: decode() takes a budget of output bytes and stops with
// kTooLarge as soon as the output would exceed it, so a small input that
// inflates to gigabytes (a zip bomb) costs at most the budget plus one
// 16 KiB step. Memory per decoder is the format's window, as the sender
// chose it: 32 KiB for gzip, up to 16 MiB for brotli, up to 8 MiB for zstd
// (frames that ask for a larger window are refused as invalid).
//
// Not thread-safe: one decoder belongs to one stream.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "filters/compressor/encoder.h"

namespace sidecar::filters::compressor {

// The Encoding of a Content-Encoding token ("gzip", "x-gzip", "br", "zstd";
// case-insensitive), or nothing.
std::optional<Encoding> encoding_of(std::string_view token);

enum class DecodeResult : uint8_t {
  kOk,        // all input taken; more may follow
  kEnd,       // the encoded stream ended (more input would be an error)
  kTooLarge,  // the output would exceed the budget
  kInvalid,   // not a valid stream of the encoding
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Appends the decoding of `in` to `out`, at most `budget` bytes (plus
  // one step); all of `in` is taken unless the result is kTooLarge or
  // kInvalid. gzip accepts concatenated members (RFC 1952 2.2) and zstd
  // concatenated frames, as their command-line tools do.
  virtual DecodeResult decode(std::string_view in, size_t budget, std::string& out) = 0;
  // Whether the stream has ended (a complete encoding was seen).
  virtual bool finished() const = 0;
};

// Null when the library could not set up a decoder (memory).
std::unique_ptr<Decoder> make_decoder(Encoding e);

}  // namespace sidecar::filters::compressor
