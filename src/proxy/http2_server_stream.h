// Internal to the HTTP/2 server codec (http2_server*.cc): the per-stream
// state and the nghttp2 glue its files share. Not a public interface.
// Used only on the connection's worker thread.
#pragma once

#include <memory>
#include <string>

#include <nghttp2/nghttp2.h>

#include "http/http1_parser.h"
#include "proxy/http2_common.h"
#include "proxy/http2_server.h"
#include "proxy/stream.h"

namespace sidecar::proxy {

struct Http2ServerConnection::H2Stream {
  int32_t id = 0;
  Clock::time_point first_byte;
  // The request as received.
  std::string method, scheme, authority, path;
  std::string protocol;  // ":protocol" of an extended CONNECT [RFC 8441 4]
  // The request's fields are fields[0, field_count); entries past it are
  // kept from earlier requests of a reused object for their capacity.
  h2::Fields fields;
  size_t field_count = 0;
  std::string cookie;  // cookie fields joined with "; " [RFC 9113 8.2.3]
  size_t header_bytes = 0;
  bool too_large = false;
  bool in_trailers = false;
  std::string head;  // ... rewritten as an HTTP/1.1 head, parsed into req
  http::RequestHead req;
  std::unique_ptr<Stream> stream;  // while the exchange is on
  bool started = false;
  bool finished = false;  // the Stream is done (response complete or reset)
  bool remote_end = false;
  bool closed = false;  // nghttp2 closed the stream
  bool tunnel = false;  // an extended CONNECT the upstream switched (start_tunnel)
  bool is_head = false;
  // Pending events (run by dispatch).
  bool ev_start = false, ev_body = false, ev_written = false, ev_close = false;
  bool awaiting_body = false;
  uint32_t close_code = 0;
  // The request body received and not yet taken by the upstream; its
  // capacity is the stream window, so appending never moves offered bytes.
  std::string body;
  // The response body being sent: spans of the stream's buffers.
  h2::SpanSource out;
  std::string local_body;
  h2::Fields trailers;          // of the response
  h2::Fields request_trailers;  // received after the request body

  // Back to the state of a new stream, keeping small buffers' capacity.
  void recycle() {
    id = 0;
    method.clear(), scheme.clear(), authority.clear(), path.clear(), protocol.clear();
    field_count = 0;
    cookie.clear();
    header_bytes = 0;
    too_large = in_trailers = started = finished = remote_end = closed = tunnel = is_head = false;
    ev_start = ev_body = ev_written = ev_close = awaiting_body = false;
    close_code = 0;
    head.clear();
    req.clear();
    stream.reset();
    // A request body buffer is reserved to the stream window: not kept.
    if (body.capacity() > kKeepCapacity) std::string().swap(body);
    body.clear();
    out.reset();
    if (local_body.capacity() > kKeepCapacity) std::string().swap(local_body);
    local_body.clear();
    trailers.clear();
    request_trailers.clear();
  }
  static constexpr size_t kKeepCapacity = 4096;
};

namespace h2server {

// nghttp2's callbacks of a server session, built once per thread.
nghttp2_session_callbacks* callbacks();
// The data provider's read callback: Http2ServerConnection::read_response.
ssize_t cb_read(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                nghttp2_data_source*, void* u);

}  // namespace h2server

}  // namespace sidecar::proxy
