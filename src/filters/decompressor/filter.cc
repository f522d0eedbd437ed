#include "filters/decompressor/filter.h"

#include <algorithm>
#include <vector>

#include "http/http1_parser.h"

namespace sidecar::filters::decompressor {
namespace {

constexpr size_t kRatioSlack = 64 * 1024;  // decoded bytes allowed before the ratio applies

bool no_transform(const http::MessageHead& head) {
  bool found = false;
  for (const auto& f : head.headers) {
    if (!http::iequals(f.name, "cache-control")) continue;
    http::for_each_token(f.value, [&](std::string_view t) {
      if (http::iequals(http::trim_ows(t.substr(0, t.find('='))), "no-transform")) found = true;
    });
  }
  return found;
}

FilterCounter* family(std::string_view name, std::string_view help, http::FilterCallbacks& cb,
                      bool request, compressor::Encoding e) {
  return counter(name, help,
                 {{"listener", cb.listener_name()},
                  {"route", cb.route_name()},
                  {"direction", request ? "request" : "response"},
                  {"encoding", compressor::token(e)}});
}

}  // namespace

void Filter::Side::reset() {
  if (in_counter != nullptr) {
    in_counter->add(in);
    out_counter->add(decoded);
  }
  in_counter = out_counter = nullptr;
  decoder.reset();
  out.clear();
  in = decoded = 0;
  failed = false;
}

const Config& Filter::config(http::FilterCallbacks& cb) const {
  const auto* route = static_cast<const Config*>(cb.route_config("decompressor"));
  return route != nullptr ? *route : *config_;
}

bool Filter::start(const http::MessageHead& head, const Direction& d, bool request, Side& side,
                   http::FilterCallbacks& cb) {
  if (!d.enabled || head.body == http::BodyKind::kNone) return false;
  // Content-Encoding lists the codings in the order applied: the last one
  // is undone first [RFC 9110 8.4].
  std::vector<std::string_view> codings;
  for (const auto& f : head.headers) {
    if (!http::iequals(f.name, "content-encoding")) continue;
    http::for_each_token(f.value, [&](std::string_view t) {
      if (!http::trim_ows(t).empty()) codings.push_back(http::trim_ows(t));
    });
  }
  if (codings.empty()) return false;
  const auto e = compressor::encoding_of(codings.back());
  if (!e || std::find(active_->encodings.begin(), active_->encodings.end(), *e) ==
                active_->encodings.end())
    return false;
  if (!d.ignore_no_transform_header && no_transform(head)) return false;
  side.decoder = compressor::make_decoder(*e);
  if (!side.decoder) return false;
  side.encoding = *e;
  codings.pop_back();
  std::string rest;
  for (std::string_view c : codings) {
    if (http::iequals(c, "identity")) continue;
    if (!rest.empty()) rest.append(", ");
    rest.append(c);
  }
  if (request) {
    cb.remove_request_header("content-length");
    cb.remove_request_header("content-encoding");
    if (!rest.empty()) cb.add_request_header("content-encoding", rest);
    cb.set_request_streamed();
  } else {
    cb.remove_response_header("content-length");
    cb.remove_response_header("content-encoding");
    if (!rest.empty()) cb.add_response_header("content-encoding", rest);
    // The body changed: a strong validator no longer matches it [RFC 9110 8.8.1].
    if (const auto* etag = head.find("etag"); etag != nullptr && !etag->value.starts_with("W/"))
      cb.set_response_header("etag", "W/" + std::string(etag->value));
    cb.set_response_streamed();
  }
  family("sidecar_decompressor_decompressed_total", "Message bodies decompressed.", cb, request, *e)
      ->add();
  side.in_counter = family("sidecar_decompressor_compressed_bytes_total",
                           "Body bytes before decompression.", cb, request, *e);
  side.out_counter = family("sidecar_decompressor_uncompressed_bytes_total",
                            "Body bytes after decompression.", cb, request, *e);
  return true;
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  const Config& c = config(cb);
  active_ = &c;
  if (c.disabled) return http::FilterStatus::kContinue;
  head_request_ = cb.request().method == http::Method::kHead;
  start(cb.request(), c.request, true, request_, cb);
  if (c.response.enabled && c.advertise_accept_encoding) {
    // Append the encodings the client did not name itself.
    std::string value;
    bool named[3] = {false, false, false};
    for (const auto& f : cb.request().headers) {
      if (!http::iequals(f.name, "accept-encoding")) continue;
      if (!value.empty()) value.append(", ");
      value.append(f.value);
      http::for_each_token(f.value, [&](std::string_view t) {
        if (const auto e = compressor::encoding_of(http::trim_ows(t.substr(0, t.find(';')))))
          named[static_cast<int>(*e)] = true;
      });
    }
    std::string added;
    for (compressor::Encoding e : c.encodings) {
      if (named[static_cast<int>(e)]) continue;
      if (!value.empty() || !added.empty()) added.append(", ");
      added.append(compressor::token(e));
    }
    if (!added.empty()) cb.set_request_header("accept-encoding", value + added);
  }
  return http::FilterStatus::kContinue;
}

void Filter::decode(Side& side, http::Spans& data, bool end, bool request,
                    http::FilterCallbacks& cb) {
  side.out.clear();
  if (side.failed) {
    data.clear();
    return;
  }
  const Config& c = *active_;
  compressor::DecodeResult r = compressor::DecodeResult::kOk;
  for (const auto& span : data) {
    const std::string_view piece(static_cast<const char*>(span.data()), span.size());
    side.in += piece.size();
    const uint64_t by_ratio = side.in * c.max_inflate_ratio + kRatioSlack;
    const uint64_t cap = std::min<uint64_t>(c.max_decompressed_bytes, by_ratio);
    const uint64_t so_far = side.decoded + side.out.size();
    const size_t budget = so_far >= cap ? 0 : static_cast<size_t>(cap - so_far);
    r = side.decoder->decode(piece, budget, side.out);
    if (r == compressor::DecodeResult::kTooLarge || r == compressor::DecodeResult::kInvalid) break;
  }
  // A body that ends before its encoding does is cut short.
  if (end && r != compressor::DecodeResult::kTooLarge && r != compressor::DecodeResult::kInvalid &&
      !side.decoder->finished())
    r = compressor::DecodeResult::kInvalid;
  data.clear();
  if (r == compressor::DecodeResult::kTooLarge || r == compressor::DecodeResult::kInvalid) {
    const bool large = r == compressor::DecodeResult::kTooLarge;
    side.failed = true;
    side.out.clear();
    counter("sidecar_decompressor_errors_total",
            "Bodies whose decompression failed: invalid, or over max_decompressed_bytes or "
            "max_inflate_ratio.",
            {{"listener", cb.listener_name()},
             {"route", cb.route_name()},
             {"direction", request ? "request" : "response"},
             {"reason", large ? "too_large" : "invalid"}})
        ->add();
    cb.set_response_detail(large ? "decompressor_too_large" : "decompressor_invalid_body");
    if (request) {
      cb.send_local_reply(large ? 413 : 400, large ? "decompressed request body too large\n"
                                                   : "invalid compressed request body\n");
    } else {
      cb.send_local_reply(502, "invalid compressed response body\n");
    }
    return;
  }
  side.decoded += side.out.size();
  if (!side.out.empty()) data.emplace_back(side.out.data(), side.out.size());
}

void Filter::on_request_data(http::Spans& data, bool end, http::FilterCallbacks& cb) {
  if (request_.decoder) decode(request_, data, end, true, cb);
}

void Filter::on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) {
  response_.reset();
  // Local replies have no head bytes and skip the body hooks: left alone.
  if (active_ == nullptr || active_->disabled || response.head.empty() || head_request_) return;
  if (response.status < 200 || response.status == 204 || response.status == 304) return;
  start(response, active_->response, false, response_, cb);
}

void Filter::on_response_data(http::Spans& data, bool end, http::FilterCallbacks& cb) {
  if (response_.decoder) decode(response_, data, end, false, cb);
}

void Filter::on_stream_end() {
  request_.reset();
  response_.reset();
  active_ = nullptr;
  head_request_ = false;
}

}  // namespace sidecar::filters::decompressor
