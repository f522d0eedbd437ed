// A downstream HTTP/2 connection: the server side of the HTTP/2 codec
// (codec.h), many streams at once, framing and HPACK by nghttp2 [RFC 9113].
//
// A connection becomes HTTP/2 in Http1ServerConnection, which hands its
// transport over: when TLS negotiated "h2" by ALPN, or (listener protocol
// auto or h2c) when the first bytes are the client connection preface.
//
// Each request's header block is rewritten as an HTTP/1.1 head and parsed
// by the HTTP/1.1 parser, so that routing, filters, limits and the upstream
// encoders see one shape of request whatever the protocol (one small copy
// per request; HTTP/1.1 keeps its zero-copy path). nghttp2 validates the
// HTTP/2 rules first (pseudo-header fields, connection-specific fields,
// Content-Length against DATA): a violation resets that stream only.
//
// Flow control is end to end: request DATA is acknowledged (WINDOW_UPDATE)
// only when the upstream has taken it, and response bytes are taken from
// the upstream only as the client's windows allow, so a slow peer on either
// side slows the other and memory stays bounded by the windows.
//
// Protections, each counted in sidecar_http2_protection_total{reason}:
// rapid reset (CVE-2023-44487: a connection whose streams are mostly reset
// by the client before their response is closed), CONTINUATION floods
// (CVE-2024-27316: a header block larger than 4x max_header_list_size or
// of too many frames closes the connection), a header list over
// max_header_list_size (431 for that stream), PING/SETTINGS floods and any
// queue of unread control frames (nghttp2's outbound limit closes the
// connection), invalid streams (reset by nghttp2's checks), streams over
// max_concurrent_streams (refused_stream: RST_STREAM REFUSED_STREAM, a
// stream error as RFC 9113 5.1.2 asks; a connection whose streams are
// mostly refused, or with over 1,000 refusals not yet written, is closed:
// refused_stream_flood; up to 1,000 refusals before the peer acknowledged
// our SETTINGS, a first burst that did not know the limit, are excused).
//
// max_concurrent_streams is enforced here, not by nghttp2: Debian's
// nghttp2 1.52 makes a stream over the limit the peer acknowledged a
// connection error. nghttp2 is given no limit of its own; the SETTINGS
// frame it packs first carries it and is rewritten on the way out to the
// configured value (advertise_settings), so the peer sees that value.
//
// Lifetime: reference counted; used only on its worker's thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/ref_counted.h"
#include "core/timer_queue.h"
#include "net/transport.h"
#include "proxy/codec.h"
#include "proxy/http2_common.h"
#include "proxy/snapshot.h"
#include "proxy/stream.h"

struct nghttp2_session;

namespace sidecar::proxy {

class Worker;

// Why a protection acted (the order of stats::kHttp2Protections).
enum class Http2Protection : uint8_t {
  kRapidReset,
  kContinuationFlood,
  kHeaderListTooLarge,
  kPingFlood,
  kSettingsFlood,
  kOutboundFlood,
  kInvalidStream,
  kRefusedStream,
  kRefusedStreamFlood,
};

// The client connection preface [RFC 9113 3.4].
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class Http2ServerConnection final : public core::RefCounted<Http2ServerConnection>,
                                    public DownstreamCodec,
                                    private core::TimerEntry {
 public:
  using Clock = std::chrono::steady_clock;

  // Takes over a connection: `received` are the bytes already read (the
  // preface and what followed), `info` the peer and TLS details.
  Http2ServerConnection(Worker& worker, std::shared_ptr<const Snapshot> snapshot,
                        const ListenerRuntime& listener, net::Transport transport,
                        const DownstreamInfo& info);
  ~Http2ServerConnection();

  void start(std::string_view received);
  // The worker is draining: GOAWAY with the last stream id; streams in
  // flight finish, then the connection closes.
  void drain();
  config::Direction direction() const { return direction_; }
  const std::string& listener_name() const { return listener_->config->name; }
  // Closes at once; streams in flight are reset.
  void close();

  // Intrusive list of the worker's connections.
  Http2ServerConnection* prev = nullptr;
  Http2ServerConnection* next = nullptr;

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
  void reset(Stream& s) override;
  void update_deadline(Stream&) override { arm_timer(); }
  std::string_view protocol(const Stream&) const override { return "HTTP/2"; }
  bool accepts_raw_chunked(const Stream&) const override { return false; }
  void set_response_trailers(Stream& s, const Trailers& trailers) override;
  void start_tunnel(Stream& s) override;

  // nghttp2 callbacks (C linkage shims call these).
  struct H2Stream;
  int on_begin_headers(int32_t id, bool request);
  int on_header(int32_t id, std::string_view name, std::string_view value);
  int on_begin_frame(uint8_t type, uint8_t flags, int32_t id, size_t length);
  int on_frame_recv(uint8_t type, uint8_t flags, int32_t id);
  int on_data(int32_t id, const uint8_t* data, size_t len);
  int on_stream_close(int32_t id, uint32_t error_code);
  int on_invalid_frame();
  long read_response(int32_t id, uint8_t* buf, size_t length, uint32_t* flags);

 private:
  H2Stream* find(int32_t id);
  H2Stream* of(const Stream& s);
  void erase_stream(int32_t id);  // back to the free list
  void unlink_stream(const Stream* s);
  void read();
  void on_read(const boost::system::error_code& ec, size_t bytes);
  // Feeds bytes to nghttp2; false when the connection was closed.
  bool receive(std::string_view bytes);
  // Runs the stream events gathered while nghttp2 parsed.
  void dispatch();
  void start_stream(H2Stream& h);
  void end_stream(H2Stream& h);  // the Stream goes back to the worker
  // Submits the response HEADERS (`nva`) and what follows them: `body` up
  // to `end` when `has_body`, else nothing (the HEADERS end the stream).
  void submit_response(H2Stream& h, h2::NvList& nva, const Spans& body, bool end, bool has_body);
  // What the Stream gave to write is taken (it hears so in dispatch(), as
  // Stream::on_downstream_written).
  void written(H2Stream& h);
  void flush();
  // Runs dispatch and flush from the event loop, once for all the calls
  // of this turn: the responses of many streams (each upstream read
  // completes on its own) go out in one write instead of one each.
  void schedule();
  void on_written(const boost::system::error_code& ec);
  void written_out();  // out_ was written whole
  void protect(Http2Protection why, uint32_t goaway_code);
  // A new stream over max_concurrent_streams: RST_STREAM REFUSED_STREAM
  // before any state of ours; its header block still goes through
  // nghttp2's HPACK decoder. 0, or NGHTTP2_ERR_CALLBACK_FAILURE when the
  // refusals are a flood (the connection is closed).
  int refuse_stream(int32_t id);
  // Writes the configured max_concurrent_streams into the first bytes
  // nghttp2 produces (its server preface SETTINGS frame), once per
  // connection; `frames` is our copy of those bytes.
  void advertise_settings(char* frames, size_t len);
  void maybe_close();

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
  DownstreamInfo info_;
  nghttp2_session* session_ = nullptr;
  // Open streams in ascending id order (a client's new streams have ever
  // higher ids [RFC 9113 5.1.1]): found by binary search, no node per
  // stream. Their objects come from a per-worker free list.
  std::vector<std::unique_ptr<H2Stream>> streams_;
  // The streams whose exchange is on, by their Stream: at most
  // max_concurrent_streams, scanned linearly (contiguous, no allocation).
  std::vector<std::pair<const Stream*, H2Stream*>> by_stream_;
  // Stream events seen inside nghttp2's callbacks, run after it returns.
  std::vector<int32_t> events_;
  // Streams whose response is complete and whose request is not: reset
  // (NO_ERROR) once their frames are written [RFC 9113 8.1].
  std::vector<int32_t> pending_resets_;

  core::Buffer in_;   // read buffer, from the worker's pool while a read is processed
  core::Buffer out_;  // frames being written; a pooled block, none when idle
  Spans out_spans_;
  bool reading_ = false;
  bool writing_ = false;
  bool flushing_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool broken_ = false;  // a write failed: close from the event loop
  bool in_dispatch_ = false;
  bool dispatch_posted_ = false;
  bool close_requested_ = false;     // close() during dispatch: at its end
  Clock::time_point last_activity_;  // core::CoarseClock: at most a tick late

  // Protection state.
  uint64_t streams_started_ = 0;
  uint64_t premature_resets_ = 0;
  uint64_t pings_ = 0;
  uint64_t settings_ = 0;
  Clock::time_point control_window_start_;
  uint64_t control_in_window_ = 0;   // PING + SETTINGS in the current second
  int32_t header_block_stream_ = 0;  // the stream whose header block is open
  size_t header_block_bytes_ = 0;    // its frames' payload so far
  uint32_t header_block_frames_ = 0;
  // Stream limit (ours, not nghttp2's: see the top of this file).
  bool settings_advertised_ = false;
  uint32_t open_streams_ = 0;      // accepted and not closed by nghttp2
  uint64_t streams_accepted_ = 0;  // over the connection's life
  uint64_t streams_refused_ = 0;
  uint64_t refusals_unsent_ = 0;   // refused streams nghttp2 has not closed yet
  bool settings_acked_ = false;    // the peer acknowledged our SETTINGS
  uint64_t refusals_excused_ = 0;  // refusals before that (up to 1,000)
};

}  // namespace sidecar::proxy
