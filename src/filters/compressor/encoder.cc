#include "filters/compressor/encoder.h"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <vector>

namespace sidecar::filters::compressor {
namespace {

constexpr size_t kChunk = 16 * 1024;  // output grows by this much at a time

// zlib streams kept for reuse by this thread (a worker): deflateInit2
// allocates about 256 KiB (window, hash chains, pending buffer, at the
// default window and memory level) that glibc may hand back to the kernel
// and fault in again on the next response; deflateReset keeps it. A few
// per set of settings (a config with one gzip setting uses one slot).
struct GzipStreams {
  struct Slot {
    int level, window_bits, memory_level;
    z_stream* z;
  };
  static constexpr size_t kMax = 8;
  std::vector<Slot> free;
  ~GzipStreams() {
    for (Slot& s : free) {
      deflateEnd(s.z);
      delete s.z;
    }
  }
};

GzipStreams& gzip_streams() {
  static thread_local GzipStreams streams;
  return streams;
}

class Gzip : public Encoder {
 public:
  bool init(const EncoderSettings& s) {
    level_ = s.gzip_level;
    window_bits_ = s.gzip_window_bits;
    memory_level_ = s.gzip_memory_level;
    auto& pool = gzip_streams().free;
    for (size_t i = pool.size(); i-- > 0;) {
      const GzipStreams::Slot& slot = pool[i];
      if (slot.level == level_ && slot.window_bits == window_bits_ &&
          slot.memory_level == memory_level_) {
        z_ = slot.z;
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
        return deflateReset(z_) == Z_OK || (discard(), false);
      }
    }
    z_ = new z_stream{};
    // windowBits + 16: a gzip wrapper, not a raw zlib stream.
    if (deflateInit2(z_, level_, Z_DEFLATED, window_bits_ + 16, memory_level_,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      delete z_;
      z_ = nullptr;
      return false;
    }
    return true;
  }
  ~Gzip() override {
    if (z_ == nullptr) return;
    auto& pool = gzip_streams().free;
    if (ended_ && pool.size() < GzipStreams::kMax) {
      pool.push_back({level_, window_bits_, memory_level_, z_});
    } else {
      discard();
    }
  }
  bool encode(std::string_view in, Flush mode, std::string& out) override {
    const bool end = mode == Flush::kFinish;
    z_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_->avail_in = static_cast<uInt>(in.size());
    const int flush = end ? Z_FINISH : mode == Flush::kFlush ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    for (;;) {
      const size_t used = out.size();
      out.resize(used + kChunk);
      z_->next_out = reinterpret_cast<Bytef*>(out.data() + used);
      z_->avail_out = kChunk;
      const int rc = deflate(z_, flush);
      out.resize(used + kChunk - z_->avail_out);
      if (rc == Z_STREAM_END) {
        ended_ = true;  // a clean stream: reusable after deflateReset
        return true;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
      // Done with this batch when zlib left output space unused.
      if (z_->avail_out != 0 && z_->avail_in == 0 && !end) return true;
    }
  }

 private:
  void discard() {
    deflateEnd(z_);
    delete z_;
    z_ = nullptr;
  }

  z_stream* z_ = nullptr;
  int level_ = 0, window_bits_ = 0, memory_level_ = 0;
  bool ended_ = false;
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
