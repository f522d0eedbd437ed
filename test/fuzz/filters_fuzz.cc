// libFuzzer target for what the traffic filters parse from requests:
// Accept-Encoding lists with q-values (compressor) and X-Forwarded-For hops
// (local_rate_limit, rate_limit client_ip), and the headers filter's values
// (Envoy's substitution format, config::parse_log_format, rendered with the
// input also as the request's fields). The input is one field value.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../filters/test_callbacks.h"
#include "config/access_log_format.h"
#include "filters/compressor/filter.h"
#include "filters/headers/filter.h"
#include "filters/local_rate_limit/filter.h"

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sidecar;
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  static const filters::compressor::Config config = [] {
    filters::compressor::Config c;
    c.encodings = {filters::compressor::Encoding::kBrotli, filters::compressor::Encoding::kGzip};
    return c;
  }();
  http::RequestHead head;
  head.headers.push_back({"Accept-Encoding", value, 0, 0});
  head.headers.push_back({"X-Forwarded-For", value, 0, 0});
  const auto e = filters::compressor::negotiate(head, config);
  // Only a configured encoding, and only when the list names it or `*`.
  if (e) {
    check(*e == filters::compressor::Encoding::kBrotli ||
          *e == filters::compressor::Encoding::kGzip);
    std::string lower(value);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    check(lower.find(filters::compressor::token(*e)) != std::string::npos ||
          lower.find('*') != std::string::npos);
  }
  // The client address is a piece of the field or the peer.
  for (uint32_t hops = 0; hops < 4; ++hops) {
    const std::string_view ip = filters::local_rate_limit::client_ip(head, "peer", hops);
    check(ip == "peer" ||
          (ip.data() >= value.data() && ip.data() + ip.size() <= value.data() + size));
  }
  // A header value format: parsed, or an error inside the input; rendered
  // values never carry a line break.
  std::string error;
  size_t offset = 0;
  auto tokens = config::parse_log_format(value, error, offset);
  check(tokens.has_value() || offset < size);
  if (tokens) {
    auto c = std::make_shared<filters::headers::Config>();
    filters::headers::HeaderToAdd h;
    h.name = "x-out";
    h.value = std::move(*tokens);
    // Literals with control characters are refused at load (valid_value):
    // only the variables' values are the filter's to clean.
    for (config::LogToken& t : h.value) {
      if (t.kind == config::LogToken::Kind::kLiteral) t.text = "lit";
    }
    c->request_add.push_back(h);
    c->response_add.push_back(std::move(h));
    filters::headers::Filter filter(c);
    static filters::testing::TestCallbacks* cb = new filters::testing::TestCallbacks();
    cb->log.clear();
    cb->head.headers = head.headers;
    cb->head.method_name = value;
    cb->upstream_host_value = std::string(value);
    filter.on_request_headers(*cb);
    http::ResponseHead response;
    response.headers = head.headers;
    filter.on_response_headers(response, *cb);
    check(cb->log.find('\r') == std::string::npos && cb->log.find('\n') == std::string::npos &&
          cb->log.find('\0') == std::string::npos);
  }
  return 0;
}
