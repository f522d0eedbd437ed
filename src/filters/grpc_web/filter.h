// The `grpc_web` filter: gRPC-Web clients (browsers) to gRPC servers
// (Envoy's envoy.filters.http.grpc_web; the protocol is gRPC's
// PROTOCOL-WEB.md; docs/filters.md "grpc_web").
//
// A request whose content-type is application/grpc-web[+proto|+json...] or
// application/grpc-web-text[...] goes upstream as application/grpc[...]
// with `te: trailers` (the -text form's base64 body decoded as it streams,
// Content-Length dropped). Its response's content-type becomes
// application/grpc-web[-text][+suffix] (text when the client's Accept or
// request was the -text form); the body streams through (base64-encoded for
// text), and the upstream's trailers (grpc-status, grpc-message, trailing
// metadata) become the body's last frame: flag 0x80, a 4-byte big-endian
// length, then "name:value\r\n" lines. A Trailers-Only answer keeps its
// status in the response head, which PROTOCOL-WEB.md allows. Other
// requests pass untouched. The upstream must be a gRPC server (a cluster
// with protocol h2 or h2c).
//
// sidecar_grpc_web_requests_total{listener,route,format="binary|text"}.
#pragma once

#include <memory>
#include <string>

#include "filters/grpc_web/config.h"
#include "filters/stats.h"
#include "http/filter.h"

namespace sidecar::filters::grpc_web {

// Streaming base64 (RFC 4648 4) for the -text form. Decoding takes groups of
// four characters, each with its own padding, since a client may send
// several separately padded segments; whitespace is skipped.
class Base64Decoder {
 public:
  // Appends the bytes of `in` that complete groups; false on a byte outside
  // the alphabet (the request is then refused).
  bool decode(std::string_view in, std::string& out);
  // Whether no partial group is left (a valid end of the body).
  bool complete() const { return held_ == 0; }
  void reset() { held_ = 0; }

 private:
  char group_[4];
  int held_ = 0;
};

class Base64Encoder {
 public:
  // Appends the characters for `in`, keeping up to two bytes for the next
  // call; `finish` pads the rest out.
  void encode(std::string_view in, std::string& out);
  void finish(std::string& out);
  void reset() { held_ = 0; }

 private:
  unsigned char bytes_[3];
  int held_ = 0;
};

class Factory : public http::HttpFilterFactory, public std::enable_shared_from_this<Factory> {
 public:
  explicit Factory(std::shared_ptr<const Config> config) : config(std::move(config)) {}
  std::unique_ptr<http::HttpFilter> create() const override;
  const std::shared_ptr<const Config> config;
};

class Filter : public http::HttpFilter {
 public:
  explicit Filter(std::shared_ptr<const Factory> factory) : factory_(std::move(factory)) {}
  http::FilterStatus on_request_headers(http::FilterCallbacks& cb) override;
  void on_request_data(http::Spans& data, bool end, http::FilterCallbacks& cb) override;
  void on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) override;
  bool on_response_trailers(const std::vector<std::pair<std::string, std::string>>& trailers,
                            http::FilterCallbacks& cb) override;
  void on_response_data(http::Spans& data, bool end, http::FilterCallbacks& cb) override;
  void on_stream_end() override;
  bool wants_request_data() const override { return true; }
  bool wants_response_data() const override { return true; }

 private:
  const std::shared_ptr<const Factory> factory_;
  RouteCounter binary_{"sidecar_grpc_web_requests_total",
                       "gRPC-Web requests translated to gRPC by grpc_web, by format.", "format",
                       "binary"};
  RouteCounter text_{"sidecar_grpc_web_requests_total",
                     "gRPC-Web requests translated to gRPC by grpc_web, by format.", "format",
                     "text"};
  bool active_ = false;         // this request is gRPC-Web
  bool text_request_ = false;   // ... with a base64 body
  bool text_response_ = false;  // ... and wants a base64 answer
  bool translating_ = false;    // the response is gRPC, translated
  std::string suffix_;          // "+proto", "+json", "" (of the request's content-type)
  Base64Decoder decoder_;
  Base64Encoder encoder_;
  std::string request_out_;   // decoded request bytes of the last batch
  std::string response_out_;  // encoded response bytes of the last batch
  std::string trailer_frame_;
};

}  // namespace sidecar::filters::grpc_web
