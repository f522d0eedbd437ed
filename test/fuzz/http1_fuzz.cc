// libFuzzer target for the HTTP/1.1 codec: request heads, response heads and
// chunked bodies, fed whole and in two pieces (the parser is incremental, so
// both must agree), with small limits so that limit paths are reached.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/http1_parser.h"

using namespace sidecar::http;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_request(std::string_view data, size_t split, const Limits& limits) {
  RequestHead whole;
  RequestParser a(limits);
  HeadResult ra = a.feed(data, whole);

  RequestHead pieces;
  RequestParser b(limits);
  HeadResult rb = b.feed(data.substr(0, split), pieces);
  if (rb.status == HeadResult::kNeedMore) rb = b.feed(data, pieces);
  check(ra.status == rb.status);
  if (ra.status == HeadResult::kDone) {
    check(ra.consumed == rb.consumed && ra.consumed <= data.size());
    check(whole.headers.size() <= limits.max_headers);
    check(whole.head.size() <= limits.max_head_size);
    for (const HeaderField& f : whole.headers) {
      check(!f.name.empty());
      check(f.line_end <= whole.head.size());
    }
    if (whole.body == BodyKind::kChunked) {
      ChunkedDecoder d(limits);
      std::vector<std::string_view> views;
      auto r = d.feed(data.substr(ra.consumed), &views);
      check(r.consumed <= data.size() - ra.consumed);
    }
  } else if (ra.status == HeadResult::kError) {
    check(ra.error == rb.error);
    const int status = status_for(ra.error);
    check(status == 400 || status == 431 || status == 505 || status == 417);
  }
}

void fuzz_response(std::string_view data, const Limits& limits) {
  ResponseHead head;
  ResponseParser p(limits);
  HeadResult r = p.feed(data, head);
  if (r.status == HeadResult::kDone) {
    check(head.status >= 100 && head.status <= 999);
    (void)response_body_kind(head, Method::kGet);
  }
}

void fuzz_chunked(std::string_view data, size_t split, const Limits& limits) {
  ChunkedDecoder a(limits);
  auto ra = a.feed(data);
  ChunkedDecoder b(limits);
  auto rb = b.feed(data.substr(0, split));
  size_t used = rb.consumed;
  if (rb.error == ParseError::kNone && !rb.done) {
    rb = b.feed(data.substr(split));
    used += rb.consumed;
  }
  check(ra.error == rb.error);
  if (ra.error == ParseError::kNone) {
    check(ra.done == rb.done);
    check(ra.consumed == used);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0] % 3;
  const size_t split = size > 2 ? data[1] % (size - 1) : 0;
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  Limits limits;
  limits.max_head_size = 512;
  limits.max_headers = 8;
  limits.max_chunk_line = 64;
  switch (mode) {
    case 0:
      fuzz_request(input, std::min(split, input.size()), limits);
      break;
    case 1:
      fuzz_response(input, limits);
      break;
    default:
      fuzz_chunked(input, std::min(split, input.size()), limits);
      break;
  }
  return 0;
}
