// libFuzzer target for what the traffic filters parse from requests:
// Accept-Encoding lists with q-values (compressor) and X-Forwarded-For hops
// (local_rate_limit, rate_limit client_ip). The input is one field value.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "filters/compressor/filter.h"
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
  return 0;
}
