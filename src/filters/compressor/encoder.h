// Streaming response encoders for the `compressor` filter: gzip (zlib,
// RFC 1952), br (brotli, RFC 7932) and zstd (RFC 8878), behind one
// interface.
//
// The caller says when to flush (Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH,
// ZSTD_e_flush): the compressor filter flushes each batch of a streamed
// response (server-sent events, long polls: no Content-Length) so it
// reaches the client batch by batch; the last batch ends the stream.
// Memory per encoder is bounded by its window settings.
//
// gzip levels 1..kIsalMaxLevel (window_bits >= kIsalMinWindowBits) are
// encoded by Intel ISA-L's igzip (the same level number: about as small as
// zlib's output at that level for a fraction of the CPU), the rest by zlib;
// memory_level only means something to zlib. Measured in docs/filters.md "gzip".
//
// gzip streams are reused per thread (deflateReset / isal_deflate_reset
// instead of a new stream per response, as its ~256-360 KiB would otherwise be allocated
// and faulted in again each time); an encoder is destroyed on the thread
// that made it.
//
// Not thread-safe: one encoder belongs to one stream.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sidecar::filters::compressor {

enum class Encoding : uint8_t { kGzip, kBrotli, kZstd };

// The Content-Encoding token: "gzip", "br", "zstd".
std::string_view token(Encoding e);

// The highest gzip level served by ISA-L (ISA-L levels 1..3), and the
// smallest window: below 2^11 bytes ISA-L's matches fall behind zlib's
// (8-25% larger on a JSON body), so zlib serves those.
constexpr int kIsalMaxLevel = 3;
constexpr int kIsalMinWindowBits = 11;

// True when ISA-L encodes gzip at this level and window (else zlib).
constexpr bool uses_isal(int gzip_level, int gzip_window_bits) {
  return gzip_level <= kIsalMaxLevel && gzip_window_bits >= kIsalMinWindowBits;
}

struct EncoderSettings {
  int gzip_level = 6;           // 1..9
  int gzip_window_bits = 15;    // 9..15 (window of 2^bits bytes)
  int gzip_memory_level = 8;    // 1..9 (zlib only: see uses_isal)
  int brotli_quality = 4;       // 0..11
  int brotli_window_bits = 20;  // 10..24
  int zstd_level = 3;           // 1..19
};

// kProcess: take the input, emit what is ready; kFlush: and everything
// pending, at a byte boundary the decoder can use; kFinish: end the stream.
enum class Flush : uint8_t { kProcess, kFlush, kFinish };

class Encoder {
 public:
  virtual ~Encoder() = default;
  // Appends the encoding of `in` to `out`. False on an encoder error.
  virtual bool encode(std::string_view in, Flush flush, std::string& out) = 0;
};

// Null when the library could not set up an encoder (memory).
std::unique_ptr<Encoder> make_encoder(Encoding e, const EncoderSettings& settings);

}  // namespace sidecar::filters::compressor
