// The `compressor` filter: response compression negotiated by
// Accept-Encoding [RFC 9110 12.5.3], streamed batch by batch.
//
// A response is compressed when all hold: the request accepts one of the
// configured encodings with q > 0 and is not HEAD and has no Range; the
// status is not 1xx, 204, 206 or 304; it has no Content-Encoding and no
// Content-Range; Cache-Control has no `no-transform`; its Content-Type is
// in the list; its Content-Length, when known, is at least
// min_content_length; it came from the upstream (local replies are sent
// whole by the proxy, outside the body hooks). Then Content-Length goes
// (the body is sent chunked), Content-Encoding is set, a strong ETag is
// weakened [RFC 9110 8.8.1] and `Vary: Accept-Encoding` is added; Vary is
// also added to compressible responses sent unencoded, so caches keep the
// variants apart.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "filters/compressor/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::compressor {

// The configured encoding the client prefers (Accept-Encoding lines of
// `head`, q-values, `*`); nothing when none is acceptable.
std::optional<Encoding> negotiate(const http::RequestHead& head, const Config& config);

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) override;
  void on_response_data(http::Spans& data, bool end, http::FilterCallbacks& cb) override;
  void on_stream_end() override;
  bool wants_response_data() const override { return true; }

 private:
  std::shared_ptr<const Config> config_;
  std::optional<Encoding> accepted_;  // from the request
  bool request_allows_ = false;       // not HEAD, no Range
  std::unique_ptr<Encoder> encoder_;  // while compressing this response
  bool failed_ = false;               // the encoder failed: the rest is dropped
  bool flush_batches_ = true;         // no Content-Length: flush each batch
  std::string out_;                   // the encoded batch handed to the stream
  uint64_t bytes_in_ = 0, bytes_out_ = 0;
  filters::FilterCounter* in_counter_ = nullptr;
  filters::FilterCounter* out_counter_ = nullptr;
  // The counters of the last (listener, route, encoding): the next
  // exchanges of a connection rarely change them, and counter() takes a
  // process-wide mutex.
  struct Counters {
    std::string listener, route;
    Encoding encoding = Encoding::kGzip;
    filters::FilterCounter* responses = nullptr;
    filters::FilterCounter* in = nullptr;
    filters::FilterCounter* out = nullptr;
  } counters_;
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

}  // namespace sidecar::filters::compressor
