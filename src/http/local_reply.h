// Responses the proxy writes itself (errors, 100 Continue), and the
// hop-by-hop rules for what it forwards.
#pragma once

#include <string>
#include <string_view>

#include "http/http1_parser.h"

namespace sidecar::http {

// The reason phrase for `status` ("Bad Gateway"), or "Unknown".
std::string_view reason_phrase(int status);

// Appends to `out` a complete HTTP/1.1 response: status line, Content-Type
// text/plain, Content-Length, "Connection: close" when `close`, and `body`
// unless `head_request` (a response to HEAD carries no body, RFC 9110 9.3.2).
void append_local_reply(std::string& out, int status, std::string_view body, bool close,
                        bool head_request);

// Decides which fields of one message are hop-by-hop and must not be
// forwarded [RFC 9110 7.6.1]: Connection, Proxy-Connection, Keep-Alive, TE,
// Transfer-Encoding, Upgrade, and every field named in Connection, except
// Host and Content-Length, which a proxy needs and a client must not be able
// to strip. Transfer-Encoding is reported like the others: the caller decides
// whether the framing it forwards needs it. The Connection tokens are
// collected once (at most 16; further ones are ignored), so checking every
// field of a message costs O(fields), not O(fields^2).
class HopByHop {
 public:
  explicit HopByHop(const MessageHead& m);
  bool operator()(std::string_view name) const;

 private:
  std::string_view tokens_[16];
  size_t count_ = 0;
};

}  // namespace sidecar::http
