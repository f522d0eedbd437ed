#include "filters/compressor/encoder.h"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

namespace sidecar::filters::compressor {
namespace {

constexpr size_t kChunk = 16 * 1024;  // output grows by this much at a time

class Gzip : public Encoder {
 public:
  bool init(const EncoderSettings& s) {
    // windowBits + 16: a gzip wrapper, not a raw zlib stream.
    ok_ = deflateInit2(&z_, s.gzip_level, Z_DEFLATED, s.gzip_window_bits + 16, s.gzip_memory_level,
                       Z_DEFAULT_STRATEGY) == Z_OK;
    return ok_;
  }
  ~Gzip() override {
    if (ok_) deflateEnd(&z_);
  }
  bool encode(std::string_view in, Flush mode, std::string& out) override {
    const bool end = mode == Flush::kFinish;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    const int flush = end ? Z_FINISH : mode == Flush::kFlush ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    for (;;) {
      const size_t used = out.size();
      out.resize(used + kChunk);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
      z_.avail_out = kChunk;
      const int rc = deflate(&z_, flush);
      out.resize(used + kChunk - z_.avail_out);
      if (rc == Z_STREAM_END) return true;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
      // Done with this batch when zlib left output space unused.
      if (z_.avail_out != 0 && z_.avail_in == 0 && !end) return true;
    }
  }

 private:
  z_stream z_{};
  bool ok_ = false;
};

class Brotli : public Encoder {
 public:
  bool init(const EncoderSettings& s) {
    state_ = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
    if (state_ == nullptr) return false;
    BrotliEncoderSetParameter(state_, BROTLI_PARAM_QUALITY,
                              static_cast<uint32_t>(s.brotli_quality));
    BrotliEncoderSetParameter(state_, BROTLI_PARAM_LGWIN,
                              static_cast<uint32_t>(s.brotli_window_bits));
    return true;
  }
  ~Brotli() override {
    if (state_ != nullptr) BrotliEncoderDestroyInstance(state_);
  }
  bool encode(std::string_view in, Flush mode, std::string& out) override {
    const bool end = mode == Flush::kFinish;
    const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    size_t avail_in = in.size();
    const BrotliEncoderOperation op = end                     ? BROTLI_OPERATION_FINISH
                                      : mode == Flush::kFlush ? BROTLI_OPERATION_FLUSH
                                                              : BROTLI_OPERATION_PROCESS;
    for (;;) {
      const size_t used = out.size();
      out.resize(used + kChunk);
      auto* next_out = reinterpret_cast<uint8_t*>(out.data() + used);
      size_t avail_out = kChunk;
      if (!BrotliEncoderCompressStream(state_, op, &avail_in, &next_in, &avail_out, &next_out,
                                       nullptr)) {
        out.resize(used);
        return false;
      }
      out.resize(used + kChunk - avail_out);
      if (avail_in == 0 && !BrotliEncoderHasMoreOutput(state_) &&
          (!end || BrotliEncoderIsFinished(state_)))
        return true;
    }
  }

 private:
  BrotliEncoderState* state_ = nullptr;
};

class Zstd : public Encoder {
 public:
  bool init(const EncoderSettings& s) {
    cctx_ = ZSTD_createCCtx();
    if (cctx_ == nullptr) return false;
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, s.zstd_level);
    return true;
  }
  ~Zstd() override { ZSTD_freeCCtx(cctx_); }
  bool encode(std::string_view in, Flush flush, std::string& out) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    const ZSTD_EndDirective mode = flush == Flush::kFinish  ? ZSTD_e_end
                                   : flush == Flush::kFlush ? ZSTD_e_flush
                                                            : ZSTD_e_continue;
    for (;;) {
      const size_t used = out.size();
      out.resize(used + kChunk);
      ZSTD_outBuffer output{out.data() + used, kChunk, 0};
      const size_t left = ZSTD_compressStream2(cctx_, &output, &input, mode);
      out.resize(used + output.pos);
      if (ZSTD_isError(left)) return false;
      if (input.pos == input.size && (mode == ZSTD_e_continue || left == 0)) return true;
    }
  }

 private:
  ZSTD_CCtx* cctx_ = nullptr;
};

}  // namespace

std::string_view token(Encoding e) {
  switch (e) {
    case Encoding::kGzip:
      return "gzip";
    case Encoding::kBrotli:
      return "br";
    case Encoding::kZstd:
      return "zstd";
  }
  return "identity";
}

std::unique_ptr<Encoder> make_encoder(Encoding e, const EncoderSettings& settings) {
  switch (e) {
    case Encoding::kGzip: {
      auto g = std::make_unique<Gzip>();
      return g->init(settings) ? std::move(g) : nullptr;
    }
    case Encoding::kBrotli: {
      auto b = std::make_unique<Brotli>();
      return b->init(settings) ? std::move(b) : nullptr;
    }
    case Encoding::kZstd: {
      auto z = std::make_unique<Zstd>();
      return z->init(settings) ? std::move(z) : nullptr;
    }
  }
  return nullptr;
}

}  // namespace sidecar::filters::compressor
