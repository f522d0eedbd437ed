#include "filters/compressor/decoder.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include "http/http1_parser.h"

namespace sidecar::filters::compressor {
namespace {

constexpr size_t kChunk = 16 * 1024;  // output grows by this much at a time

class Gzip : public Decoder {
 public:
  bool init() {
    // windowBits 15 + 16: gzip wrapper only, the largest window.
    ok_ = inflateInit2(&z_, 15 + 16) == Z_OK;
    return ok_;
  }
  ~Gzip() override {
    if (ok_) inflateEnd(&z_);
  }
  DecodeResult decode(std::string_view in, size_t budget, std::string& out) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    const size_t start = out.size();
    for (;;) {
      if (ended_) {
        if (z_.avail_in == 0) break;
        // Another gzip member follows (concatenated, RFC 1952 2.2).
        if (inflateReset(&z_) != Z_OK) return DecodeResult::kInvalid;
        ended_ = false;
      }
      if (out.size() - start > budget) return DecodeResult::kTooLarge;
      const size_t used = out.size();
      out.resize(used + kChunk);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      z_.avail_out = kChunk;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      out.resize(used + kChunk - z_.avail_out);
      if (rc == Z_STREAM_END) {
        ended_ = true;
        continue;
      }
      if (rc == Z_BUF_ERROR && z_.avail_in == 0) break;  // nothing more without input
      if (rc != Z_OK) return DecodeResult::kInvalid;
      // All input taken and room left: nothing is pending inside zlib.
      if (z_.avail_in == 0 && z_.avail_out != 0) break;
    }
    if (out.size() - start > budget) return DecodeResult::kTooLarge;
    return ended_ ? DecodeResult::kEnd : DecodeResult::kOk;
  }
  bool finished() const override { return ended_; }

 private:
  z_stream z_{};
  bool ok_ = false;
  bool ended_ = false;
};

class Brotli : public Decoder {
 public:
  bool init() {
    state_ = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
    return state_ != nullptr;
  }
  ~Brotli() override {
    if (state_ != nullptr) BrotliDecoderDestroyInstance(state_);
  }
  DecodeResult decode(std::string_view in, size_t budget, std::string& out) override {
    const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    size_t avail_in = in.size();
    const size_t start = out.size();
    if (ended_) return avail_in == 0 ? DecodeResult::kEnd : DecodeResult::kInvalid;
    for (;;) {
      if (out.size() - start > budget) return DecodeResult::kTooLarge;
      const size_t used = out.size();
      out.resize(used + kChunk);
      auto* next_out = reinterpret_cast<uint8_t*>(out.data() + used);
      size_t avail_out = kChunk;
      const BrotliDecoderResult rc = BrotliDecoderDecompressStream(state_, &avail_in, &next_in,
                                                                   &avail_out, &next_out, nullptr);
      out.resize(used + kChunk - avail_out);
      switch (rc) {
        case BROTLI_DECODER_RESULT_SUCCESS:
          ended_ = true;
          if (avail_in != 0) return DecodeResult::kInvalid;  // bytes after the end
          return out.size() - start > budget ? DecodeResult::kTooLarge : DecodeResult::kEnd;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
          return out.size() - start > budget ? DecodeResult::kTooLarge : DecodeResult::kOk;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
          continue;
        default:
          return DecodeResult::kInvalid;
      }
    }
  }
  bool finished() const override { return ended_; }

 private:
  BrotliDecoderState* state_ = nullptr;
  bool ended_ = false;
};

class Zstd : public Decoder {
 public:
  bool init() {
    dctx_ = ZSTD_createDCtx();
    if (dctx_ == nullptr) return false;
    // A frame may ask for a window of up to 2 GiB: refuse more than 8 MiB
    // (the zstd tool's default level-19 window) rather than allocate it.
    ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, 23);
    return true;
  }
  ~Zstd() override { ZSTD_freeDCtx(dctx_); }
  DecodeResult decode(std::string_view in, size_t budget, std::string& out) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    const size_t start = out.size();
    for (;;) {
      if (out.size() - start > budget) return DecodeResult::kTooLarge;
      const size_t used = out.size();
      out.resize(used + kChunk);
      ZSTD_outBuffer output{out.data() + used, kChunk, 0};
      const size_t left = ZSTD_decompressStream(dctx_, &output, &input);
      out.resize(used + output.pos);
      if (ZSTD_isError(left)) return DecodeResult::kInvalid;
      // 0: a frame ended (another may follow in the input).
      ended_ = left == 0;
      if (input.pos == input.size && output.pos < kChunk) break;
    }
    if (out.size() - start > budget) return DecodeResult::kTooLarge;
    return ended_ ? DecodeResult::kEnd : DecodeResult::kOk;
  }
  bool finished() const override { return ended_; }

 private:
  ZSTD_DCtx* dctx_ = nullptr;
  bool ended_ = false;
};

}  // namespace

std::optional<Encoding> encoding_of(std::string_view token) {
  if (http::iequals(token, "gzip") || http::iequals(token, "x-gzip")) return Encoding::kGzip;
  if (http::iequals(token, "br")) return Encoding::kBrotli;
  if (http::iequals(token, "zstd")) return Encoding::kZstd;
  return std::nullopt;
}

std::unique_ptr<Decoder> make_decoder(Encoding e) {
  switch (e) {
    case Encoding::kGzip: {
      auto g = std::make_unique<Gzip>();
      return g->init() ? std::move(g) : nullptr;
    }
    case Encoding::kBrotli: {
      auto b = std::make_unique<Brotli>();
      return b->init() ? std::move(b) : nullptr;
    }
    case Encoding::kZstd: {
      auto z = std::make_unique<Zstd>();
      return z->init() ? std::move(z) : nullptr;
    }
  }
  return nullptr;
}

}  // namespace sidecar::filters::compressor
