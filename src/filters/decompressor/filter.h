// The `decompressor` filter: request and response bodies encoded with gzip,
// br or zstd are decoded as they stream (Envoy's
// envoy.filters.http.decompressor; docs/filters.md "decompressor").
//
// A message is decoded when its direction is enabled, the last coding of
// its Content-Encoding is one of the configured encodings, it has a body,
// and its Cache-Control has no `no-transform` (unless
// ignore_no_transform_header). Then that coding leaves Content-Encoding
// (the field goes when none is left), Content-Length is removed and the
// body is sent streamed (the filter contract's set_request_streamed /
// set_response_streamed). With response decoding on and
// advertise_accept_encoding, the request's Accept-Encoding gains the
// configured encodings, so the upstream may compress.
//
// Bounded: a body decodes to at most max_decompressed_bytes, and to at most
// max_inflate_ratio times the encoded bytes seen so far (plus 64 KiB, so a
// small first batch may fill a decoder step); beyond either, or on invalid
// bytes, a request is answered 413 (too large) or 400 (invalid) and never
// completes upstream; a response is reset (cut short, 502 when nothing
// was sent yet). Nothing buffers a whole body: memory per decoding stream
// is the decoder's window and one batch of output.
//
// Counted in sidecar_decompressor_{decompressed_total, compressed_bytes_total,
// uncompressed_bytes_total, errors_total} by listener, route, direction,
// encoding (errors: by reason="invalid|too_large").
#pragma once

#include <memory>
#include <string>

#include "filters/compressor/decoder.h"
#include "filters/decompressor/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::decompressor {

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_request_data(http::Spans& data, bool end, http::FilterCallbacks& cb) override;
  void on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) override;
  void on_response_data(http::Spans& data, bool end, http::FilterCallbacks& cb) override;
  void on_stream_end() override;
  bool wants_request_data() const override { return true; }
  bool wants_response_data() const override { return true; }

  // One direction's decoding state.
  struct Side {
    std::unique_ptr<compressor::Decoder> decoder;
    compressor::Encoding encoding = compressor::Encoding::kGzip;
    std::string out;  // the decoded batch handed to the stream
    uint64_t in = 0, decoded = 0;
    bool failed = false;  // the rest of the body is dropped
    FilterCounter* in_counter = nullptr;
    FilterCounter* out_counter = nullptr;
    void reset();
  };

 private:
  // The config in force for this request (the route's, else the listener's).
  const Config& config(http::FilterCallbacks& cb) const;
  // Starts decoding `head` in direction `dir` ("request"/"response") when
  // it qualifies; edits its fields through `cb`.
  bool start(const http::MessageHead& head, const Direction& d, bool request, Side& side,
             http::FilterCallbacks& cb);
  // Decodes one batch in place; false when the body must end (answered).
  void decode(Side& side, http::Spans& data, bool end, bool request, http::FilterCallbacks& cb);

  std::shared_ptr<const Config> config_;
  const Config* active_ = nullptr;  // for this request
  Side request_, response_;
  bool head_request_ = false;
};

class Factory : public http::HttpFilterFactory {
 public:
  explicit Factory(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  std::unique_ptr<http::HttpFilter> create() const override {
    return std::make_unique<Filter>(config_);
  }

 private:
  std::shared_ptr<const Config> config_;
};

}  // namespace sidecar::filters::decompressor
