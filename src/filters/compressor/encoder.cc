#include "filters/compressor/encoder.h"

#include <brotli/encode.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <zstd.h>

#include <new>
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

// ISA-L (igzip) streams kept for reuse by this thread, as the zlib ones:
// an isal_zstream is about 80 KiB (history, hash heads) and its level
// buffer ~276 KiB (ISAL_DEF_LVLx_DEFAULT: hash chains and a 64 Ki token
// buffer); isal_deflate_reset keeps both.
struct IsalStreams {
  struct Slot {
    int level, window_bits;
    isal_zstream* z;
    uint8_t* level_buf;
  };
  static constexpr size_t kMax = 8;
  std::vector<Slot> free;
  ~IsalStreams() {
    for (Slot& s : free) {
      delete s.z;
      delete[] s.level_buf;
    }
  }
};

IsalStreams& isal_streams() {
  static thread_local IsalStreams streams;
  return streams;
}

uint32_t isal_level_buf_size(int level) {
  switch (level) {
    case 1:
      return ISAL_DEF_LVL1_DEFAULT;
    case 2:
      return ISAL_DEF_LVL2_DEFAULT;
    default:
      return ISAL_DEF_LVL3_DEFAULT;
  }
}

// gzip levels 1..kIsalMaxLevel on ISA-L's igzip at the same level number:
// 5 to 20 times less CPU than zlib, and no larger output than zlib at that
// level (bench body and prose, docs/filters.md "gzip"). ISA-L's best level
// (3) is 4-8% larger than zlib 4..9 on prose, so those stay on zlib.
class IsalGzip : public Encoder {
 public:
  bool init(const EncoderSettings& s) {
    level_ = s.gzip_level;
    window_bits_ = s.gzip_window_bits;
    auto& pool = isal_streams().free;
    for (size_t i = pool.size(); i-- > 0;) {
      const IsalStreams::Slot& slot = pool[i];
      if (slot.level == level_ && slot.window_bits == window_bits_) {
        z_ = slot.z;
        level_buf_ = slot.level_buf;
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
        isal_deflate_reset(z_);
        set_parameters();
        return true;
      }
    }
    z_ = new (std::nothrow) isal_zstream{};
    level_buf_ = new (std::nothrow) uint8_t[isal_level_buf_size(level_)];
    if (z_ == nullptr || level_buf_ == nullptr) return false;
    isal_deflate_init(z_);
    set_parameters();
    return true;
  }
  ~IsalGzip() override {
    auto& pool = isal_streams().free;
    if (ended_ && pool.size() < IsalStreams::kMax) {
      pool.push_back({level_, window_bits_, z_, level_buf_});
    } else {
      delete z_;
      delete[] level_buf_;
    }
  }
  bool encode(std::string_view in, Flush mode, std::string& out) override {
    const bool end = mode == Flush::kFinish;
    z_->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
    z_->avail_in = static_cast<uint32_t>(in.size());
    z_->end_of_stream = end ? 1 : 0;
    // SYNC_FLUSH ends the block with an empty stored block (byte aligned),
    // as zlib's Z_SYNC_FLUSH: the client decodes everything sent so far.
    z_->flush = mode == Flush::kFlush ? SYNC_FLUSH : NO_FLUSH;
    for (;;) {
      const size_t used = out.size();
      out.resize(used + kChunk);
      z_->next_out = reinterpret_cast<uint8_t*>(out.data() + used);
      z_->avail_out = kChunk;
      const uint32_t before_in = z_->avail_in;
      if (isal_deflate(z_) != COMP_OK) {
        out.resize(used);
        return false;
      }
      const uint32_t wrote = kChunk - z_->avail_out;
      out.resize(used + wrote);
      if (end && z_->internal_state.state == ZSTATE_END) {
        ended_ = true;  // a clean stream: reusable after isal_deflate_reset
        return true;
      }
      // isal_deflate returns when the input is used up or the output full;
      // with room left, the input (and a flush) is done.
      if (z_->avail_out != 0 && z_->avail_in == 0 && !end) return true;
      if (wrote == 0 && z_->avail_in == before_in) return false;  // no progress
    }
  }

 private:
  void set_parameters() {
    z_->level = static_cast<uint32_t>(level_);
    z_->level_buf = level_buf_;
    z_->level_buf_size = isal_level_buf_size(level_);
    // Again after each reset: isal_deflate turns IGZIP_GZIP into
    // IGZIP_GZIP_NO_HDR once it wrote the header, and isal_deflate_reset
    // keeps that (the next response would lack its gzip header).
    z_->gzip_flag = IGZIP_GZIP;
    z_->hist_bits = static_cast<uint16_t>(window_bits_);
  }

  isal_zstream* z_ = nullptr;
  uint8_t* level_buf_ = nullptr;
  int level_ = 0, window_bits_ = 0;
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
      if (uses_isal(settings.gzip_level, settings.gzip_window_bits)) {
        auto g = std::make_unique<IsalGzip>();
        return g->init(settings) ? std::move(g) : nullptr;
      }
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
