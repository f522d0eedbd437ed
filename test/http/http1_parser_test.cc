#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace sidecar::http {
namespace {

using Status = HeadResult::Status;

HeadResult parse_request(std::string_view data, RequestHead& head, Limits limits = {}) {
  RequestParser p(limits);
  return p.feed(data, head);
}

ParseError request_error(std::string_view data, Limits limits = {}) {
  RequestHead head;
  HeadResult r = parse_request(data, head, limits);
  EXPECT_EQ(r.status, Status::kError) << data;
  return r.error;
}

ParseError response_error(std::string_view data) {
  ResponseParser p;
  ResponseHead head;
  HeadResult r = p.feed(data, head);
  EXPECT_EQ(r.status, Status::kError) << data;
  return r.error;
}

// Feeds `body` to a chunked decoder in two pieces split at `split`;
// returns the decoded data, or sets `error`.
std::string decode_chunked(std::string_view body, size_t split, ParseError& error, size_t& used,
                           bool& done) {
  ChunkedDecoder d;
  std::vector<std::string_view> views;
  std::string out;
  error = ParseError::kNone;
  used = 0;
  done = false;
  for (std::string_view part : {body.substr(0, split), body.substr(split)}) {
    if (done) break;
    views.clear();
    auto r = d.feed(part, &views);
    for (auto v : views) out.append(v);
    used += r.consumed;
    done = r.done;
    if (r.error != ParseError::kNone) {
      error = r.error;
      return out;
    }
  }
  return out;
}

ParseError chunked_error(std::string_view body) {
  ChunkedDecoder d;
  auto r = d.feed(body);
  return r.error;
}

const std::string kGet =
    "GET /a/b?c=d HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "X-Empty:\r\n"
    "X-Spaces: \t  padded value \t \r\n"
    "\r\n";

TEST(RequestParser, ParsesAHeadWithZeroCopyViews) {
  RequestHead head;
  HeadResult r = parse_request(kGet, head);
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.consumed, kGet.size());
  EXPECT_EQ(head.method, Method::kGet);
  EXPECT_EQ(head.method_name, "GET");
  EXPECT_EQ(head.target, "/a/b?c=d");
  EXPECT_EQ(head.version_minor, 1);
  ASSERT_EQ(head.headers.size(), 5u);
  EXPECT_EQ(head.headers[0].name, "Host");
  EXPECT_EQ(head.headers[0].value, "example.com:8080");
  EXPECT_EQ(head.headers[3].name, "X-Empty");
  EXPECT_EQ(head.headers[3].value, "");
  EXPECT_EQ(head.headers[4].value, "padded value");
  EXPECT_EQ(head.host(), "example.com:8080");
  EXPECT_EQ(head.body, BodyKind::kNone);
  EXPECT_TRUE(head.keep_alive());
  // Views point into the input: nothing was copied.
  EXPECT_EQ(head.target.data(), kGet.data() + 4);
  // Line offsets cover each whole field line.
  const HeaderField& ua = head.headers[1];
  EXPECT_EQ(kGet.substr(ua.line_begin, ua.line_end - ua.line_begin), "User-Agent: curl/7.88.1\r\n");
}

struct Case {
  std::string name;
  std::string data;
  Method method;
  BodyKind body;
  uint64_t content_length;
  size_t headers;
};

std::vector<Case> valid_requests() {
  return {
      {"get", kGet, Method::kGet, BodyKind::kNone, 0, 5},
      {"post_cl", "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
       Method::kPost, BodyKind::kContentLength, 11, 2},
      {"chunked",
       "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       Method::kPut, BodyKind::kChunked, 0, 2},
      {"http10", "GET / HTTP/1.0\r\n\r\n", Method::kGet, BodyKind::kNone, 0, 0},
      {"leading_crlf", "\r\n\r\nHEAD /h HTTP/1.1\r\nHost: h\r\n\r\n", Method::kHead,
       BodyKind::kNone, 0, 1},
      {"absolute_form", "GET http://svc.local:81/p?q HTTP/1.1\r\nHost: svc.local:81\r\n\r\n",
       Method::kGet, BodyKind::kNone, 0, 1},
      {"options_star", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", Method::kOptions, BodyKind::kNone,
       0, 1},
      {"obs_text", "GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9\r\n\r\n", Method::kGet,
       BodyKind::kNone, 0, 2},
      {"content_length_zero", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
       Method::kPost, BodyKind::kNone, 0, 2},
  };
}

TEST(RequestParser, ValidMessagesSplitAtEveryByteBoundary) {
  for (const Case& c : valid_requests()) {
    // Reference: the whole message at once.
    RequestHead whole;
    HeadResult full = parse_request(c.data, whole);
    ASSERT_EQ(full.status, Status::kDone) << c.name << ": " << to_string(full.error);
    EXPECT_EQ(whole.method, c.method) << c.name;
    EXPECT_EQ(whole.body, c.body) << c.name;
    EXPECT_EQ(whole.content_length, c.content_length) << c.name;
    EXPECT_EQ(whole.headers.size(), c.headers) << c.name;
    // Every split into two reads, with the same parser.
    for (size_t split = 0; split <= c.data.size(); ++split) {
      RequestParser p;
      RequestHead head;
      HeadResult a = p.feed(std::string_view(c.data).substr(0, split), head);
      if (split < full.consumed) {
        ASSERT_EQ(a.status, Status::kNeedMore) << c.name << " split " << split;
        a = p.feed(c.data, head);
      }
      ASSERT_EQ(a.status, Status::kDone) << c.name << " split " << split;
      EXPECT_EQ(a.consumed, full.consumed) << c.name << " split " << split;
      EXPECT_EQ(head.target, whole.target);
      ASSERT_EQ(head.headers.size(), whole.headers.size());
      for (size_t i = 0; i < head.headers.size(); ++i) {
        EXPECT_EQ(head.headers[i].name, whole.headers[i].name);
        EXPECT_EQ(head.headers[i].value, whole.headers[i].value);
      }
    }
    // One byte at a time.
    RequestParser p;
    RequestHead head;
    HeadResult r;
    for (size_t n = 1; n <= c.data.size(); ++n) {
      r = p.feed(std::string_view(c.data).substr(0, n), head);
      if (r.status != Status::kNeedMore) break;
    }
    EXPECT_EQ(r.status, Status::kDone) << c.name;
    EXPECT_EQ(r.consumed, full.consumed) << c.name;
  }
}

TEST(RequestParser, KeepAliveFollowsVersionAndConnection) {
  RequestHead h;
  ASSERT_EQ(parse_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", h).status,
            Status::kDone);
  EXPECT_FALSE(h.keep_alive());
  ASSERT_EQ(parse_request("GET / HTTP/1.0\r\n\r\n", h).status, Status::kDone);
  EXPECT_FALSE(h.keep_alive());
  ASSERT_EQ(parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", h).status,
            Status::kDone);
  EXPECT_TRUE(h.keep_alive());
  ASSERT_EQ(parse_request("GET / HTTP/1.1\r\nHost: h\r\nConnection: te, close\r\n\r\n", h).status,
            Status::kDone);
  EXPECT_FALSE(h.keep_alive());
}

TEST(RequestParser, ExpectContinue) {
  RequestHead h;
  ASSERT_EQ(parse_request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                          "Expect: 100-Continue\r\n\r\n",
                          h)
                .status,
            Status::kDone);
  EXPECT_TRUE(h.expect_continue);
  EXPECT_EQ(request_error("POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n"),
            ParseError::kUnsupportedExpect);
  EXPECT_EQ(status_for(ParseError::kUnsupportedExpect), 417);
}

// Each request smuggling shape, and what it is rejected as.
TEST(RequestParser, RejectsSmugglingShapes) {
  struct Bad {
    const char* data;
    ParseError error;
  };
  const Bad cases[] = {
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       ParseError::kContentLengthWithTransferEncoding},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       ParseError::kContentLengthWithTransferEncoding},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
       ParseError::kDuplicateContentLength},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
       ParseError::kDuplicateContentLength},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", ParseError::kBadContentLength},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", ParseError::kBadContentLength},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", ParseError::kBadContentLength},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", ParseError::kBadContentLength},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
       ParseError::kBadContentLength},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
       ParseError::kBadTransferEncoding},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
       ParseError::kBadTransferEncoding},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
       ParseError::kBadTransferEncoding},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
       "\r\n\r\n",
       ParseError::kBadTransferEncoding},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
       ParseError::kBadTransferEncoding},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ParseError::kBadTransferEncoding},
      {"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", ParseError::kObsFold},
      {"GET / HTTP/1.1\r\nHost: h\r\n\tX-A: 1\r\n\r\n", ParseError::kObsFold},
      {"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
       ParseError::kWhitespaceBeforeColon},
      {"GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n", ParseError::kWhitespaceBeforeColon},
      {"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", ParseError::kBareLf},
      {"GET / HTTP/1.1\nHost: h\r\n\r\n", ParseError::kBareLf},
      {"GET / HTTP/1.1\r\nHost: h\r\n\n", ParseError::kBareLf},
      {"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n", ParseError::kBareCr},
      {"GET / HTTP/1.1\r\nHost: h\rX: 1\r\n\r\n", ParseError::kBareCr},
      {"GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBareCr},
      {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", ParseError::kBadHeaderValue},
      {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fz\r\n\r\n", ParseError::kBadHeaderValue},
      {"GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n", ParseError::kBadHeaderName},
      {"GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", ParseError::kBadHeaderName},
      {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", ParseError::kBadHeaderName},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ParseError::kDuplicateHost},
      {"GET / HTTP/1.1\r\n\r\n", ParseError::kMissingHost},
      {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", ParseError::kBadHost},
      {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ParseError::kBadHost},
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequestLine},
      {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", ParseError::kBadRequestLine},
      {"GET / http/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequestLine},
      {"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequestLine},
      {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadRequestLine},
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", ParseError::kUnsupportedVersion},
      {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", ParseError::kUnsupportedVersion},
  };
  for (const Bad& b : cases) {
    std::string data = b.data;
    EXPECT_EQ(request_error(data), b.error) << data;
    EXPECT_EQ(status_for(b.error), b.error == ParseError::kUnsupportedVersion ? 505 : 400);
  }
  // NUL in a value (the table above cannot hold it in a C string).
  EXPECT_EQ(request_error(std::string("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0z\r\n\r\n", 38)),
            ParseError::kBadHeaderValue);
}

TEST(RequestParser, EnforcesHeadSizeLimit) {
  Limits limits;
  limits.max_head_size = 1024;
  std::string big = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  EXPECT_EQ(request_error(big, limits), ParseError::kHeadTooLarge);
  EXPECT_EQ(status_for(ParseError::kHeadTooLarge), 431);
  // Incomplete but already too large: rejected without waiting for the end.
  RequestParser p(limits);
  RequestHead h;
  EXPECT_EQ(p.feed(big.substr(0, 1500), h).status, Status::kError);
  // Exactly at the limit is fine.
  std::string fits = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  fits += std::string(1024 - fits.size() - 4, 'b') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 1024u);
  RequestHead ok;
  EXPECT_EQ(parse_request(fits, ok, limits).status, Status::kDone);
  // One byte over, the final CRLF included (found by the fuzzer).
  std::string over_by_one = fits.substr(0, fits.size() - 4) + "b\r\n\r\n";
  ASSERT_EQ(over_by_one.size(), 1025u);
  EXPECT_EQ(request_error(over_by_one, limits), ParseError::kHeadTooLarge);
  // Default: 60 KiB.
  std::string over = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(61 * 1024, 'c') + "\r\n\r\n";
  EXPECT_EQ(request_error(over), ParseError::kHeadTooLarge);
}

TEST(RequestParser, EnforcesHeaderCountLimit) {
  auto make = [](int n) {
    std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (int i = 1; i < n; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  RequestHead h;
  EXPECT_EQ(parse_request(make(100), h).status, Status::kDone);
  EXPECT_EQ(h.headers.size(), 100u);
  EXPECT_EQ(request_error(make(101)), ParseError::kTooManyHeaders);
  EXPECT_EQ(status_for(ParseError::kTooManyHeaders), 431);
  Limits limits;
  limits.max_headers = 3;
  EXPECT_EQ(request_error(make(4), limits), ParseError::kTooManyHeaders);
}

TEST(RequestParser, LeadingEmptyLinesCountTowardsTheLimit) {
  Limits limits;
  limits.max_head_size = 1024;
  std::string crlfs;
  for (int i = 0; i < 600; ++i) crlfs += "\r\n";
  EXPECT_EQ(request_error(crlfs, limits), ParseError::kHeadTooLarge);
}

TEST(ResponseParser, ParsesStatusLines) {
  ResponseParser p;
  ResponseHead h;
  std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  HeadResult res = p.feed(r, h);
  ASSERT_EQ(res.status, Status::kDone);
  EXPECT_EQ(res.consumed, r.size() - 5);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.body, BodyKind::kContentLength);
  EXPECT_EQ(h.content_length, 5u);

  p.reset();
  ASSERT_EQ(p.feed("HTTP/1.0 204\r\n\r\n", h).status, Status::kDone);
  EXPECT_EQ(h.status, 204);
  EXPECT_EQ(h.version_minor, 0);

  p.reset();
  ASSERT_EQ(p.feed("HTTP/1.1 200 OK\r\n\r\n", h).status, Status::kDone);
  EXPECT_EQ(h.body, BodyKind::kUntilClose);

  p.reset();
  ASSERT_EQ(p.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", h).status,
            Status::kDone);
  EXPECT_EQ(h.body, BodyKind::kChunked);
}

TEST(ResponseParser, BodyKindDependsOnRequestAndStatus) {
  ResponseParser p;
  ResponseHead h;
  ASSERT_EQ(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", h).status, Status::kDone);
  EXPECT_EQ(response_body_kind(h, Method::kGet), BodyKind::kContentLength);
  EXPECT_EQ(response_body_kind(h, Method::kHead), BodyKind::kNone);
  for (const char* s : {"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                        "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"}) {
    p.reset();
    ASSERT_EQ(p.feed(s, h).status, Status::kDone) << s;
    EXPECT_EQ(response_body_kind(h, Method::kGet), BodyKind::kNone) << s;
  }
}

TEST(ResponseParser, RejectsMalformedResponses) {
  EXPECT_EQ(response_error("HTTP/1.1 20 OK\r\n\r\n"), ParseError::kBadStatusLine);
  EXPECT_EQ(response_error("HTTP/1.1 2000 OK\r\n\r\n"), ParseError::kBadStatusLine);
  EXPECT_EQ(response_error("HTTP/1.1 099 X\r\n\r\n"), ParseError::kBadStatusLine);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\nX: 1\r\n\r\n"), ParseError::kBareLf);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: "
                           "chunked\r\n\r\n"),
            ParseError::kContentLengthWithTransferEncoding);
  EXPECT_EQ(response_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            ParseError::kDuplicateContentLength);
  EXPECT_EQ(response_error("\r\nHTTP/1.1 200 OK\r\n\r\n"), ParseError::kBadStatusLine);
  EXPECT_EQ(response_error("HTTP/3 200 OK\r\n\r\n"), ParseError::kBadStatusLine);
}

TEST(ChunkedDecoder, DecodesAtEveryByteBoundary) {
  const std::string body =
      "5\r\nhello\r\n"
      "1;name=value;quoted=\"a \\\" b\"\r\n \r\n"
      "A ; ext\r\n0123456789\r\n"
      "0\r\n"
      "Trailer-One: x\r\n"
      "\r\n";
  const std::string next = "GET / HTTP/1.1\r\n";  // a pipelined request after the body
  const std::string data = body + next;
  for (size_t split = 0; split <= data.size(); ++split) {
    ParseError error;
    size_t used;
    bool done;
    std::string out = decode_chunked(data, split, error, used, done);
    ASSERT_EQ(error, ParseError::kNone) << "split " << split;
    EXPECT_TRUE(done) << "split " << split;
    EXPECT_EQ(used, body.size()) << "split " << split;
    EXPECT_EQ(out, "hello 0123456789") << "split " << split;
  }
  // One byte at a time.
  ChunkedDecoder d;
  std::vector<std::string_view> views;
  std::string out;
  size_t i = 0;
  for (; i < data.size() && !d.done(); ++i) {
    views.clear();
    auto r = d.feed(std::string_view(data).substr(i, 1), &views);
    ASSERT_EQ(r.error, ParseError::kNone) << i;
    for (auto v : views) out += v;
  }
  EXPECT_EQ(i, body.size());
  EXPECT_EQ(out, "hello 0123456789");
}

TEST(ChunkedDecoder, LargeChunkSizes) {
  ChunkedDecoder d;
  auto r = d.feed("FFFFFFFFFFFFFFFF\r\nabc");
  EXPECT_EQ(r.error, ParseError::kNone);
  EXPECT_EQ(r.consumed, 21u);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(chunked_error("10000000000000000\r\n"), ParseError::kBadChunkSize);  // 17 digits
}

TEST(ChunkedDecoder, RejectsBadFraming) {
  struct Bad {
    std::string body;
    ParseError error;
  };
  const Bad cases[] = {
      {"\r\n", ParseError::kBadChunkSize},
      {"g\r\n", ParseError::kBadChunkSize},
      {"-1\r\n", ParseError::kBadChunkSize},
      {"0x5\r\n", ParseError::kBadChunkSize},
      {"5\nhello\r\n", ParseError::kBadChunkFraming},           // LF-only after the size
      {"5\r\rhello\r\n", ParseError::kBadChunkFraming},         // bare CR
      {"5\r\nhello\n0\r\n\r\n", ParseError::kBadChunkFraming},  // LF-only after data
      {"5\r\nhelloX\r\n", ParseError::kBadChunkFraming},        // data longer than the size
      {"5\r\nhello\rX", ParseError::kBadChunkFraming},
      {"0\r\n\n", ParseError::kBadTrailer},  // LF-only at the end
      {"0\r\n\rX", ParseError::kBadChunkFraming},
      {"5 \r\nhello\r\n", ParseError::kBadChunkExtension},       // whitespace, no extension
      {"5;\r\nhello\r\n", ParseError::kBadChunkExtension},       // empty extension name
      {"5;a=\r\nhello\r\n", ParseError::kBadChunkExtension},     // empty value
      {"5;a=\"x\r\nhello\r\n", ParseError::kBadChunkExtension},  // unterminated quote
      {"5;a\x01\r\nhello\r\n", ParseError::kBadChunkExtension},
      {"5;a=b\nhello\r\n", ParseError::kBadChunkExtension},
      {"0\r\nX-T: 1\nabc", ParseError::kBadTrailer},
      {"0\r\n X-T: 1\r\n\r\n", ParseError::kBadTrailer},  // obs-fold in trailers
      {"0\r\nX T: 1\r\n\r\n", ParseError::kBadTrailer},
      {"0\r\nNoColon\r\n\r\n", ParseError::kBadTrailer},
  };
  for (const Bad& b : cases) EXPECT_EQ(chunked_error(b.body), b.error) << b.body;
  EXPECT_EQ(chunked_error("5;" + std::string(5000, 'a') + "\r\n"), ParseError::kBadChunkExtension);
}

TEST(ChunkedDecoder, TrailerSizeIsLimited) {
  Limits limits;
  limits.max_head_size = 100;
  ChunkedDecoder d(limits);
  auto r = d.feed("0\r\nX: " + std::string(200, 'a') + "\r\n\r\n");
  EXPECT_EQ(r.error, ParseError::kTrailersTooLarge);
}

TEST(Tokens, SplitsListsAndComparesCaseInsensitively) {
  std::vector<std::string> got;
  for_each_token(" a, ,b ,\tc\t", [&](std::string_view t) { got.emplace_back(t); });
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
  EXPECT_FALSE(iequals("[", "{"));  // not case variants of each other
}

}  // namespace
}  // namespace sidecar::http
