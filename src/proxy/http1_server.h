// A downstream HTTP/1.1 connection: the server side of the HTTP/1.1 codec
// (codec.h), one stream at a time, so pipelined requests are answered in
// order.
//
// Request heads are parsed in place (zero-copy views of the read buffer)
// and stay valid for the stream's life; when a body streams through, the
// head is copied aside once so that the buffer can be reused for the body.
// Bodies are offered to the stream as views of the read buffer: as received
// (Content-Length, or raw chunked framing when the upstream is HTTP/1.1
// too) or decoded. Responses are written as spans with one writev, tried at
// once and only waiting for the reactor when the socket is full.
//
// All timeouts of the connection and its stream share one entry in the
// worker's timer queue (core/timer_queue.h), re-armed lazily: it fires at
// the earliest deadline known when it was armed and then looks at the
// current deadlines, so updating a deadline is a store, not a timer
// operation. An armed entry holds a reference to the connection (as a
// pending timer wait did).
//
// Lifetime: reference counted (core/ref_counted.h); used only on its
// worker's thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "core/buffer.h"
#include "core/ref_counted.h"
#include "core/timer_queue.h"
#include "http/http1_parser.h"
#include "http/spans.h"
#include "net/transport.h"
#include "proxy/codec.h"
#include "proxy/snapshot.h"
#include "proxy/stream.h"

namespace sidecar::proxy {

class Worker;

class Http1ServerConnection final : public core::RefCounted<Http1ServerConnection>,
                                    public DownstreamCodec,
                                    private core::TimerEntry {
 public:
  using Clock = std::chrono::steady_clock;
  // The read buffer starts at this size and doubles, up to kMaxBufferSize,
  // while reads (large uploads) keep filling it.
  static constexpr size_t kBufferSize = 16 * 1024;     // bytes
  static constexpr size_t kMaxBufferSize = 64 * 1024;  // bytes

  Http1ServerConnection(Worker& worker, const ListenerRuntime& listener,
                        boost::asio::ip::tcp::socket socket,
                        const boost::asio::ip::tcp::endpoint& peer);
  ~Http1ServerConnection();

  void start();
  // The worker is draining: close now if idle, else after this response.
  void drain();
  config::Direction direction() const { return direction_; }
  const std::string& listener_name() const { return listener_->config->name; }
  // Closes at once; the request in flight, if any, is lost.
  void close();

  // Per-request state (in the .cc), pooled per thread.
  struct Exchange;
  struct ExchangeDeleter {
    void operator()(Exchange* x) const;
  };

  // Intrusive list of the worker's connections.
  Http1ServerConnection* prev = nullptr;
  Http1ServerConnection* next = nullptr;

  // DownstreamCodec
  BodyBatch request_body(Stream& s, Spans& out, bool raw_chunked_ok) override;
  void consume_request_body(Stream& s, size_t bytes) override;
  void await_request_body(Stream& s) override;
  void send_interim(Stream& s, const http::ResponseHead& head) override;
  void send_response(Stream& s, const OutgoingResponse& head, Spans& body, bool raw_chunked,
                     bool end) override;
  void send_body(Stream& s, Spans& body, bool raw_chunked, bool end) override;
  void send_local_reply(Stream& s, int status, std::string_view content_type, std::string_view body,
                        std::string_view extra_headers, bool close) override;
  void finished(Stream& s) override;
  void update_deadline(Stream& s) override { arm_timer(); }
  void reset(Stream& s) override;
  std::string_view protocol(const Stream& s) const override;
  bool accepts_raw_chunked(const Stream& s) const override { return version_minor_ == 1; }
  void start_tunnel(Stream& s) override;
  void set_response_trailers(Stream& s, const Trailers& trailers) override;

 private:
  enum class Phase : uint8_t {
    kHandshake,  // TLS handshake in progress
    kIdle,       // between requests, nothing buffered
    kHead,       // part of a request head has arrived
    kActive,     // a request is being proxied
    kClosing,    // write side shut down, reading until the client closes
    kClosed,
  };

  void on_handshake(const boost::system::error_code& ec);
  void handshake_failed(const boost::system::error_code& ec);
  void refresh_snapshot();
  // Listener protocol auto or h2c: whether the connection starts with the
  // HTTP/2 preface; true when it was handed over (or closed).
  bool sniff_http2();
  void hand_over_to_http2(std::string_view received);
  void read();
  // Idle (nothing buffered): waits for bytes without holding a read buffer.
  void wait_readable();
  void take_exchange();
  void on_read(const boost::system::error_code& ec, size_t bytes);
  void process_head();
  void new_stream();
  void release_stream();
  // Copies the request head aside so that the buffer can be reused.
  void detach_head();
  void add_body(Spans& body, bool raw_chunked, bool end);
  void write();
  void on_written(const boost::system::error_code& ec);
  void begin_close();

  Clock::time_point deadline() const;
  void arm_timer();
  // Disarms the entry and drops its reference: the caller must hold one.
  void cancel_timer();
  void on_expired() override;  // core::TimerEntry

  Worker& worker_;
  std::shared_ptr<const Snapshot> snapshot_;  // keeps listener_ alive
  const ListenerRuntime* listener_;
  const config::Direction direction_;
  net::Transport transport_;
  core::Buffer in_;  // from the worker's pool while a request is read (core/buffer.h)
  http::RequestParser parser_;
  std::unique_ptr<Exchange, ExchangeDeleter> x_;  // while a request is in progress
  DownstreamInfo info_;
  std::unique_ptr<Stream> stream_;  // the request in flight

  Phase phase_ = Phase::kIdle;
  bool sniffed_ = false;          // the first bytes were checked for the HTTP/2 preface
  bool drain_requested_ = false;  // finish the request in flight, then close
  bool reading_ = false;
  bool last_read_filled_ = false;
  bool writing_ = false;
  Clock::time_point last_activity_;
  Clock::time_point head_deadline_;
  Clock::time_point first_byte_;

  // The request in flight.
  uint8_t version_minor_ = 1;
  bool is_head_ = false;
  bool keep_alive_ = true;
  size_t head_size_ = 0;
  bool head_in_buffer_ = false;  // else in x_->head_copy
  http::BodyKind body_ = http::BodyKind::kNone;
  uint64_t remaining_ = 0;
  bool body_complete_ = false;  // the decoder saw the end of the request body
  size_t body_given_ = 0;       // body bytes offered to the stream, not yet consumed
  bool awaiting_body_ = false;
  bool tunnel_ = false;      // upgraded: the body is the client's bytes until its end of stream
  bool tunnel_eof_ = false;  // ... which came

  // The response.
  bool chunk_response_ = false;  // the codec adds chunked framing
  bool close_after_ = false;     // the response says Connection: close
};

}  // namespace sidecar::proxy
