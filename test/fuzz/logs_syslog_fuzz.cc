// libFuzzer target for the syslog parser (RFC 5424 and RFC 3164).
#include "logs_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static logs_fuzz::JsonParser json;
  logs_fuzz::Line line(data, size);
  sidecar::logship::Batch b;
  b.begin(0);
  const bool ok = sidecar::logship::parse_syslog(line.view(), b);
  logs_fuzz::check_record(json, b, ok);
  return 0;
}
