#include "filters/grpc_web/filter.h"

#include <spdlog/spdlog.h>

#include "core/base64.h"

namespace sidecar::filters::grpc_web {
namespace {

constexpr std::string_view kWeb = "application/grpc-web";
constexpr std::string_view kWebText = "application/grpc-web-text";

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && http::iequals(s.substr(0, prefix.size()), prefix);
}

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// The part of a content-type after its gRPC-Web prefix ("+proto"), or
// nothing when it is not one; parameters (";...") are dropped.
std::string_view grpc_suffix(std::string_view ct, std::string_view prefix) {
  std::string_view rest = ct.substr(prefix.size());
  rest = rest.substr(0, rest.find(';'));
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  return rest;
}

}  // namespace

bool Base64Decoder::decode(std::string_view in, std::string& out) {
  for (char c : in) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c != '=' && value_of(c) < 0) return false;
    group_[held_++] = c;
    if (held_ < 4) continue;
    held_ = 0;
    const int a = value_of(group_[0]), b = value_of(group_[1]);
    if (a < 0 || b < 0) return false;  // padding in the first two places
    out += static_cast<char>((a << 2) | (b >> 4));
    if (group_[2] == '=') {
      if (group_[3] != '=') return false;
      continue;
    }
    const int c2 = value_of(group_[2]);
    out += static_cast<char>(((b & 15) << 4) | (c2 >> 2));
    if (group_[3] == '=') continue;
    const int d = value_of(group_[3]);
    out += static_cast<char>(((c2 & 3) << 6) | d);
  }
  return true;
}

void Base64Encoder::encode(std::string_view in, std::string& out) {
  // Complete the held group first, then whole groups at once (core/base64);
  // what is left waits for the next batch.
  while (held_ > 0 && held_ < 3 && !in.empty()) {
    bytes_[held_++] = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
  }
  if (held_ == 3) {
    out += core::base64_encode(std::string_view(reinterpret_cast<const char*>(bytes_), 3));
    held_ = 0;
  }
  const size_t whole = in.size() / 3 * 3;
  if (whole > 0) out += core::base64_encode(in.substr(0, whole));
  for (char c : in.substr(whole)) bytes_[held_++] = static_cast<unsigned char>(c);
}

void Base64Encoder::finish(std::string& out) {
  if (held_ == 0) return;
  out += core::base64_encode(
      std::string_view(reinterpret_cast<const char*>(bytes_), static_cast<size_t>(held_)));
  held_ = 0;
}

std::unique_ptr<http::HttpFilter> Factory::create() const {
  return std::make_unique<Filter>(shared_from_this());
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  on_stream_end();
  const Config* c = factory_->config.get();
  if (const auto* route = static_cast<const Config*>(cb.route_config("grpc_web"))) c = route;
  if (c->disabled) return http::FilterStatus::kContinue;
  const http::HeaderField* ct = cb.request().find("content-type");
  if (ct == nullptr || !starts_with_ci(ct->value, kWeb)) return http::FilterStatus::kContinue;
  active_ = true;
  text_request_ = starts_with_ci(ct->value, kWebText);
  suffix_ = grpc_suffix(ct->value, text_request_ ? kWebText : kWeb);
  // The client says which form it reads (PROTOCOL-WEB.md "Protocol
  // differences"); without an Accept, the form it wrote.
  const http::HeaderField* accept = cb.request().find("accept");
  text_response_ =
      accept != nullptr ? accept->value.find(kWebText) != std::string_view::npos : text_request_;
  (text_request_ ? text_ : binary_).get(cb.listener_name(), cb.route_name())->add();
  cb.set_request_header("content-type", std::string("application/grpc").append(suffix_));
  // gRPC servers want it; HTTP/1.1 clients cannot send it through a proxy.
  cb.remove_request_header("te");
  cb.add_request_header("te", "trailers");
  if (text_request_) {
    // Decoding shrinks the body: it goes upstream without a length.
    cb.remove_request_header("content-length");
    cb.set_request_streamed();
  }
  return http::FilterStatus::kContinue;
}

void Filter::on_request_data(http::Spans& data, bool end, http::FilterCallbacks& cb) {
  if (!active_ || !text_request_) return;
  request_out_.clear();
  bool ok = true;
  for (const auto& b : data) {
    ok = ok && decoder_.decode(std::string_view(static_cast<const char*>(b.data()), b.size()),
                               request_out_);
  }
  if (!ok || (end && !decoder_.complete())) {
    // Not base64: what reaches the server is cut short, and it answers
    // INTERNAL for the broken message; nothing invalid is passed on.
    SPDLOG_DEBUG("grpc_web: the -text request body is not valid base64");
    request_out_.clear();
  }
  data.clear();
  if (!request_out_.empty()) data.emplace_back(request_out_.data(), request_out_.size());
}

void Filter::on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) {
  translating_ = false;
  if (!active_) return;
  const http::HeaderField* ct = response.find("content-type");
  if (ct == nullptr || !starts_with_ci(ct->value, "application/grpc") ||
      starts_with_ci(ct->value, kWeb)) {
    return;  // not a gRPC answer (a proxy's text error, an HTML page): as it is
  }
  translating_ = true;
  std::string_view suffix = grpc_suffix(ct->value, "application/grpc");
  if (suffix.empty()) suffix = suffix_.empty() ? std::string_view("+proto") : suffix_;
  std::string out(text_response_ ? kWebText : kWeb);
  out.append(suffix);
  cb.set_response_header("content-type", out);
  cb.remove_response_header("content-length");
  cb.set_response_streamed();
}

bool Filter::on_response_trailers(const std::vector<std::pair<std::string, std::string>>& trailers,
                                  http::FilterCallbacks&) {
  if (!translating_) return false;
  std::string block;
  for (const auto& [name, value] : trailers)
    block.append(name).append(":").append(value).append("\r\n");
  trailer_frame_.clear();
  trailer_frame_ += static_cast<char>(0x80);
  const uint32_t n = static_cast<uint32_t>(block.size());
  trailer_frame_ += static_cast<char>(n >> 24);
  trailer_frame_ += static_cast<char>(n >> 16);
  trailer_frame_ += static_cast<char>(n >> 8);
  trailer_frame_ += static_cast<char>(n);
  trailer_frame_ += block;
  return true;
}

void Filter::on_response_data(http::Spans& data, bool end, http::FilterCallbacks&) {
  if (!translating_) return;
  if (!text_response_) {
    if (end && !trailer_frame_.empty())
      data.emplace_back(trailer_frame_.data(), trailer_frame_.size());
    return;
  }
  response_out_.clear();
  for (const auto& b : data) {
    encoder_.encode(std::string_view(static_cast<const char*>(b.data()), b.size()), response_out_);
  }
  if (end) {
    encoder_.finish(response_out_);
    // The trailer frame as a base64 segment of its own, as Envoy sends it.
    if (!trailer_frame_.empty()) {
      encoder_.encode(trailer_frame_, response_out_);
      encoder_.finish(response_out_);
    }
  }
  data.clear();
  if (!response_out_.empty()) data.emplace_back(response_out_.data(), response_out_.size());
}

void Filter::on_stream_end() {
  active_ = text_request_ = text_response_ = translating_ = false;
  suffix_.clear();
  decoder_.reset();
  encoder_.reset();
  trailer_frame_.clear();
}

}  // namespace sidecar::filters::grpc_web
