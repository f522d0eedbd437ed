#include "upstream/health_grpc.h"

#include <nghttp2/nghttp2.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>

#include "net/transport.h"

namespace sidecar::upstream {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Protobuf varint.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(const std::string& in, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && pos < in.size(); shift += 7) {
    const auto b = static_cast<uint8_t>(in[pos++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

int parse_health_response(const std::string& message) {
  if (message.size() < 5 || message[0] != 0) return -1;  // compressed: not ours to send
  const uint32_t len = (static_cast<uint32_t>(static_cast<uint8_t>(message[1])) << 24) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(message[2])) << 16) |
                       (static_cast<uint32_t>(static_cast<uint8_t>(message[3])) << 8) |
                       static_cast<uint32_t>(static_cast<uint8_t>(message[4]));
  if (message.size() != 5 + static_cast<size_t>(len)) return -1;
  const std::string body = message.substr(5);
  size_t pos = 0;
  int status = 0;  // proto3 default: UNKNOWN
  while (pos < body.size()) {
    uint64_t key = 0;
    if (!get_varint(body, pos, key)) return -1;
    const uint64_t field = key >> 3;
    const uint64_t wire = key & 7;
    uint64_t v = 0;
    if (wire == 0) {
      if (!get_varint(body, pos, v)) return -1;
      if (field == 1) status = static_cast<int>(v);
    } else if (wire == 2) {
      if (!get_varint(body, pos, v) || v > body.size() - pos) return -1;
      pos += v;
    } else if (wire == 5) {
      if (body.size() - pos < 4) return -1;
      pos += 4;
    } else if (wire == 1) {
      if (body.size() - pos < 8) return -1;
      pos += 8;
    } else {
      return -1;
    }
  }
  return status;
}

struct GrpcHealthCall::State : std::enable_shared_from_this<GrpcHealthCall::State> {
  net::Transport& transport;
  std::string authority, service;
  Done done;
  nghttp2_session* session = nullptr;
  int32_t stream_id = -1;
  std::string request;  // the gRPC message
  size_t request_sent = 0;
  std::string out;
  std::vector<asio::const_buffer> spans;
  bool writing = false;
  bool finished = false;
  char buf[8192];
  int http_status = 0;
  int grpc_status = -1;
  std::string grpc_message;
  std::string response;

  State(net::Transport& t, std::string a, std::string s, Done d)
      : transport(t), authority(std::move(a)), service(std::move(s)), done(std::move(d)) {}
  ~State() {
    if (session != nullptr) nghttp2_session_del(session);
  }

  void finish(Result r, const std::string& why) {
    if (finished) return;
    finished = true;
    // Never from inside nghttp2's callbacks or start(): post.
    asio::post(transport.socket().get_executor(),
               [self = shared_from_this(), r, why] { self->done(r, why); });
  }

  void flush() {
    if (finished || writing) return;
    out.clear();
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n < 0) {
        finish(Result::kError, nghttp2_strerror(static_cast<int>(n)));
        return;
      }
      if (n == 0) break;
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (out.empty()) return;
    writing = true;
    spans = {asio::buffer(out)};
    transport.async_write(spans, [self = shared_from_this()](const error_code& ec) {
      self->writing = false;
      if (self->finished) return;
      if (ec) {
        self->finish(Result::kError, "write: " + ec.message());
        return;
      }
      self->flush();
    });
  }

  void read() {
    transport.async_read_some(
        asio::buffer(buf), [self = shared_from_this()](const error_code& ec, size_t n) {
          if (self->finished) return;
          if (ec) {
            self->finish(Result::kError, "read: " + ec.message());
            return;
          }
          const ssize_t used = nghttp2_session_mem_recv(
              self->session, reinterpret_cast<const uint8_t*>(self->buf), n);
          if (used < 0) {
            self->finish(Result::kError, nghttp2_strerror(static_cast<int>(used)));
            return;
          }
          self->flush();
          if (!self->finished) self->read();
        });
  }

  void on_close() {
    if (http_status != 200) {
      finish(Result::kError, fmt::format("HTTP status {}", http_status));
    } else if (grpc_status != 0) {
      finish(grpc_status == -1 ? Result::kError : Result::kNotServing,
             fmt::format("grpc-status {} {}", grpc_status, grpc_message));
    } else {
      const int s = parse_health_response(response);
      if (s == 1) {
        finish(Result::kServing, "");
      } else if (s < 0) {
        finish(Result::kError, "unparsable HealthCheckResponse");
      } else {
        finish(Result::kNotServing, fmt::format("serving status {}", s));
      }
    }
  }
};

namespace {

using State = GrpcHealthCall::State;

int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
              const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* s = static_cast<State*>(user);
  if (frame->hd.stream_id != s->stream_id) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    s->http_status = std::atoi(std::string(v).c_str());
  } else if (n == "grpc-status") {
    s->grpc_status = std::atoi(std::string(v).c_str());
  } else if (n == "grpc-message") {
    s->grpc_message = std::string(v);
  }
  return 0;
}

int on_data(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
            void* user) {
  auto* s = static_cast<State*>(user);
  if (stream_id != s->stream_id) return 0;
  if (s->response.size() + len > 64 * 1024) return NGHTTP2_ERR_CALLBACK_FAILURE;
  s->response.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user) {
  auto* s = static_cast<State*>(user);
  if (stream_id != s->stream_id) return 0;
  if (error_code != 0) {
    s->finish(GrpcHealthCall::Result::kError, fmt::format("stream reset ({})", error_code));
  } else {
    s->on_close();
  }
  return 0;
}

ssize_t read_request(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                     nghttp2_data_source*, void* user) {
  auto* s = static_cast<State*>(user);
  const size_t n = std::min(length, s->request.size() - s->request_sent);
  std::memcpy(buf, s->request.data() + s->request_sent, n);
  s->request_sent += n;
  if (s->request_sent == s->request.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

nghttp2_nv header(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

GrpcHealthCall::GrpcHealthCall(net::Transport& transport, std::string authority,
                               std::string service, Done done)
    : state_(std::make_shared<State>(transport, std::move(authority), std::move(service),
                                     std::move(done))) {}

GrpcHealthCall::~GrpcHealthCall() { state_->finished = true; }

void GrpcHealthCall::start() {
  State& s = *state_;
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  const int rv = nghttp2_session_client_new(&s.session, cbs, &s);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    s.finish(Result::kError, nghttp2_strerror(rv));
    return;
  }
  nghttp2_submit_settings(s.session, NGHTTP2_FLAG_NONE, nullptr, 0);
  // HealthCheckRequest{service = 1} in a gRPC message.
  std::string proto;
  if (!s.service.empty()) {
    proto.push_back(0x0a);
    put_varint(proto, s.service.size());
    proto += s.service;
  }
  s.request.push_back(0);
  const auto len = static_cast<uint32_t>(proto.size());
  for (int shift = 24; shift >= 0; shift -= 8) s.request.push_back(static_cast<char>(len >> shift));
  s.request += proto;
  const std::string scheme = s.transport.secure() != nullptr ? "https" : "http";
  const nghttp2_nv nva[] = {
      header(":method", "POST"),
      header(":scheme", scheme),
      header(":path", "/grpc.health.v1.Health/Check"),
      header(":authority", s.authority),
      header("content-type", "application/grpc"),
      header("te", "trailers"),
      header("user-agent", "sidecar-health-check"),
  };
  nghttp2_data_provider provider{};
  provider.read_callback = read_request;
  s.stream_id = nghttp2_submit_request(s.session, nullptr, nva, sizeof(nva) / sizeof(nva[0]),
                                       &provider, nullptr);
  if (s.stream_id < 0) {
    s.finish(Result::kError, nghttp2_strerror(s.stream_id));
    return;
  }
  s.flush();
  s.read();
}

}  // namespace sidecar::upstream
