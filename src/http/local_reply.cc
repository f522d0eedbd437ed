#include "http/local_reply.h"

#include <fmt/format.h>

namespace sidecar::http {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void append_local_reply(std::string& out, int status, std::string_view body, bool close,
                        bool head_request) {
  fmt::format_to(std::back_inserter(out),
                 "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n",
                 status, reason_phrase(status), body.size(), close ? "connection: close\r\n" : "");
  if (!head_request) out.append(body);
}

HopByHop::HopByHop(const MessageHead& m) {
  if (!m.has_connection) return;
  for (const HeaderField& f : m.headers) {
    if (f.name.size() != 10 || !iequals(f.name, "connection")) continue;
    for_each_token(f.value, [this](std::string_view token) {
      if (count_ < std::size(tokens_)) tokens_[count_++] = token;
    });
  }
}

bool HopByHop::operator()(std::string_view name) const {
  switch (name.size()) {
    case 2:
      if (iequals(name, "te")) return true;
      break;
    case 4:
      if (iequals(name, "host")) return false;
      break;
    case 7:
      if (iequals(name, "upgrade")) return true;
      break;
    case 10:
      if (iequals(name, "connection") || iequals(name, "keep-alive")) return true;
      break;
    case 14:
      if (iequals(name, "content-length")) return false;
      break;
    case 16:
      if (iequals(name, "proxy-connection")) return true;
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) return true;
      break;
    default:
      break;
  }
  for (size_t i = 0; i < count_; ++i) {
    if (iequals(tokens_[i], name)) return true;
  }
  return false;
}

}  // namespace sidecar::http
