#include "filters/compressor/filter.h"

#include <charconv>

#include "filters/stats.h"
#include "http/http1_parser.h"

namespace sidecar::filters::compressor {
namespace {

// q-value of one Accept-Encoding element's parameters [RFC 9110 12.4.2]:
// 1 when absent, -1 when malformed (the element is ignored).
double qvalue(std::string_view params) {
  double q = 1;
  while (!params.empty()) {
    const size_t semi = params.find(';');
    std::string_view p = http::trim_ows(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    if (p.size() < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=') continue;
    p.remove_prefix(2);
    // "0", "0.5", "1", "1.000": at most three decimals, in [0, 1].
    if (p.empty() || p.size() > 5 || (p[0] != '0' && p[0] != '1')) return -1;
    q = p[0] - '0';
    if (p.size() > 1) {
      if (p[1] != '.') return -1;
      double scale = 0.1;
      for (char c : p.substr(2)) {
        if (c < '0' || c > '9') return -1;
        q += (c - '0') * scale;
        scale /= 10;
      }
      if (q > 1) return -1;
    }
  }
  return q;
}

bool has_token(std::string_view value, std::string_view token) {
  bool found = false;
  http::for_each_token(value, [&](std::string_view t) {
    const size_t eq = t.find('=');
    if (http::iequals(http::trim_ows(t.substr(0, eq)), token)) found = true;
  });
  return found;
}

}  // namespace

std::optional<Encoding> negotiate(const http::RequestHead& head, const Config& config) {
  double q[3] = {-1, -1, -1};  // by Encoding; -1: not named
  double wildcard = -1;
  for (const auto& f : head.headers) {
    if (!http::iequals(f.name, "accept-encoding")) continue;
    http::for_each_token(f.value, [&](std::string_view element) {
      const size_t semi = element.find(';');
      const std::string_view coding = http::trim_ows(element.substr(0, semi));
      const double v =
          qvalue(semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1));
      if (v < 0) return;
      if (http::iequals(coding, "gzip") || http::iequals(coding, "x-gzip")) {
        q[0] = v;
      } else if (http::iequals(coding, "br")) {
        q[1] = v;
      } else if (http::iequals(coding, "zstd")) {
        q[2] = v;
      } else if (coding == "*") {
        wildcard = v;
      }
    });
  }
  std::optional<Encoding> best;
  double best_q = 0;
  for (Encoding e : config.encodings) {
    double v = q[static_cast<int>(e)];
    if (v < 0) v = wildcard;
    if (v > best_q) {  // strictly: ties keep the earlier (config order)
      best = e;
      best_q = v;
    }
  }
  return best;
}

http::FilterStatus Filter::on_request_headers(http::FilterCallbacks& cb) {
  const http::RequestHead& head = cb.request();
  request_allows_ = head.method != http::Method::kHead && head.find("range") == nullptr;
  accepted_ = request_allows_ ? negotiate(head, *config_) : std::nullopt;
  return http::FilterStatus::kContinue;
}

void Filter::on_response_headers(const http::ResponseHead& response, http::FilterCallbacks& cb) {
  encoder_.reset();
  failed_ = false;
  // Local replies have no head bytes and skip the body hooks: left alone.
  if (!request_allows_ || response.head.empty()) return;
  const int status = response.status;
  if (status < 200 || status == 204 || status == 206 || status == 304) return;
  if (response.find("content-range") != nullptr) return;
  if (const auto* f = response.find("content-encoding");
      f != nullptr && !http::iequals(http::trim_ows(f->value), "identity"))
    return;
  for (const auto& f : response.headers) {
    if (http::iequals(f.name, "cache-control") && has_token(f.value, "no-transform")) return;
  }
  const auto* type = response.find("content-type");
  if (type == nullptr) return;
  std::string_view media = http::trim_ows(type->value.substr(0, type->value.find(';')));
  bool listed = false;
  for (const std::string& t : config_->content_types) listed = listed || http::iequals(t, media);
  if (!listed) return;
  if (response.has_content_length && response.content_length < config_->min_content_length) return;
  if (response.body == http::BodyKind::kNone) return;

  // Compressible: the representation varies with Accept-Encoding from here.
  const http::HeaderField* vary = nullptr;
  for (const auto& f : response.headers) {
    if (http::iequals(f.name, "vary")) vary = &f;
  }
  if (vary == nullptr) {
    cb.add_response_header("vary", "Accept-Encoding");
  } else if (!has_token(vary->value, "accept-encoding") && http::trim_ows(vary->value) != "*") {
    std::string merged;
    for (const auto& f : response.headers) {
      if (!http::iequals(f.name, "vary")) continue;
      merged.append(f.value).append(", ");
    }
    merged.append("Accept-Encoding");
    cb.set_response_header("vary", merged);
  }
  if (!accepted_) return;
  encoder_ = make_encoder(*accepted_, config_->settings);
  if (!encoder_) return;
  // A body of known length is one document: compressed without a flush per
  // batch (as nginx), so the encoder emits whole blocks. A stream without
  // one (server-sent events, a long poll) is flushed batch by batch.
  flush_batches_ = !response.has_content_length;
  cb.remove_response_header("content-length");
  if (response.find("content-encoding") != nullptr) cb.remove_response_header("content-encoding");
  cb.add_response_header("content-encoding", token(*accepted_));
  if (const auto* etag = response.find("etag"); etag != nullptr && !etag->value.starts_with("W/")) {
    cb.set_response_header("etag", "W/" + std::string(etag->value));
  }
  cb.set_response_streamed();
  const std::string_view listener = cb.listener_name(), route = cb.route_name();
  Counters& c = counters_;
  if (c.responses == nullptr || c.encoding != *accepted_ || c.listener != listener ||
      c.route != route) {
    const std::string_view encoding = token(*accepted_);
    c.listener.assign(listener);
    c.route.assign(route);
    c.encoding = *accepted_;
    c.responses =
        counter("sidecar_compressor_responses_total", "Responses compressed, by encoding.",
                {{"listener", listener}, {"route", route}, {"encoding", encoding}});
    c.in = counter("sidecar_compressor_uncompressed_bytes_total",
                   "Response body bytes before compression, by encoding.",
                   {{"listener", listener}, {"route", route}, {"encoding", encoding}});
    c.out = counter("sidecar_compressor_compressed_bytes_total",
                    "Response body bytes after compression, by encoding.",
                    {{"listener", listener}, {"route", route}, {"encoding", encoding}});
  }
  c.responses->add(1);
  in_counter_ = c.in;
  out_counter_ = c.out;
}

void Filter::on_response_data(http::Spans& data, bool end, http::FilterCallbacks&) {
  if (!encoder_ && !failed_) return;
  out_.clear();
  bool ok = !failed_;
  for (size_t i = 0; i < data.size() && ok; ++i) {
    const std::string_view piece(static_cast<const char*>(data[i].data()), data[i].size());
    bytes_in_ += piece.size();
    // Flush once per batch, at its last piece.
    const Flush flush = i + 1 < data.size() ? Flush::kProcess
                        : end               ? Flush::kFinish
                        : flush_batches_    ? Flush::kFlush
                                            : Flush::kProcess;
    ok = encoder_->encode(piece, flush, out_);
  }
  if (ok && data.empty() && end) ok = encoder_->encode({}, Flush::kFinish, out_);
  if (!ok) {
    // Not with valid settings; a body cut short beats one with wrong bytes.
    out_.clear();
    failed_ = true;
  }
  bytes_out_ += out_.size();
  data.clear();
  if (!out_.empty()) data.emplace_back(out_.data(), out_.size());
}

void Filter::on_stream_end() {
  if (in_counter_ != nullptr) {
    in_counter_->add(bytes_in_);
    out_counter_->add(bytes_out_);
  }
  in_counter_ = out_counter_ = nullptr;
  bytes_in_ = bytes_out_ = 0;
  encoder_.reset();
  failed_ = false;
  accepted_.reset();
  request_allows_ = false;
  out_.clear();
}

}  // namespace sidecar::filters::compressor
