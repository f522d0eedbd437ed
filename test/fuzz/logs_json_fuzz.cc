// libFuzzer target for the json parser (simdjson On-Demand plus our token checks).
#include "logs_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static logs_fuzz::JsonParser json;
  // Raw bytes (not only fixed UTF-8): invalid input must be rejected cleanly.
  std::string raw(reinterpret_cast<const char*>(data), size);
  const size_t n = raw.size();
  raw.append(sidecar::logship::kPadding, ' ');
  sidecar::logship::Batch b;
  b.begin(0);
  const bool ok = json.parse(std::string_view(raw.data(), n), b);
  logs_fuzz::check_record(json, b, ok);
  return 0;
}
