// libFuzzer target for the cri parser: the line split, and cri as an
// envelope with json for its message (parser: [cri, json]).
#include "logs_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sidecar::logship;
  static logs_fuzz::JsonParser json;
  static Parsers parsers([] {
    ParserConfig cri, js;
    cri.kind = ParserConfig::Kind::kCri;
    cri.time_key = "time";
    cri.keep_time_key = false;
    js.kind = ParserConfig::Kind::kJson;
    return std::vector<ParserConfig>{cri, js};
  }());
  logs_fuzz::Line line(data, size);
  CriLine parts;
  if (split_cri(line.view(), parts)) {
    logs_fuzz::check(parts.message.size() <= line.view().size());
    logs_fuzz::check(parts.stream == "stdout" || parts.stream == "stderr");
  }
  Batch b;
  b.begin(0);
  const bool ok = parsers.parse(line.view(), b);
  logs_fuzz::check(ok == split_cri(line.view(), parts));
  logs_fuzz::check_record(json, b, ok);
  return 0;
}
