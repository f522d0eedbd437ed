#include <gtest/gtest.h>

#include <set>

#include "core/random.h"
#include "http/spans.h"
#include "proxy/trailers.h"
#include "proxy/upgrade.h"

namespace sidecar::proxy {
namespace {

struct Parsed {
  std::string text;
  http::RequestHead head;
  explicit Parsed(const std::string& fields, const char* version = "HTTP/1.1") {
    text = std::string("GET /chat ") + version + "\r\nHost: h\r\n" + fields + "\r\n";
    http::RequestParser p;
    EXPECT_EQ(p.feed(text, head).status, http::HeadResult::kDone) << text;
  }
};

TEST(Upgrade, NeedsUpgradeAndTheConnectionToken) {
  EXPECT_EQ(upgrade_type(Parsed("Upgrade: websocket\r\nConnection: Upgrade\r\n").head),
            "websocket");
  EXPECT_EQ(upgrade_type(Parsed("Connection: keep-alive, upgrade\r\nUpgrade: WebSocket\r\n").head),
            "WebSocket");
  EXPECT_EQ(upgrade_type(Parsed("Upgrade: websocket\r\n").head), "");
  EXPECT_EQ(upgrade_type(Parsed("Connection: upgradex\r\nUpgrade: websocket\r\n").head), "");
  // h2c is not an upgrade the proxy takes (RFC 9113 3.1), nor a list, nor HTTP/1.0.
  EXPECT_EQ(upgrade_type(Parsed("Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n").head),
            "");
  EXPECT_EQ(upgrade_type(Parsed("Upgrade: a, b\r\nConnection: upgrade\r\n").head), "");
  EXPECT_EQ(upgrade_type(Parsed("Upgrade: websocket\r\nConnection: upgrade\r\n", "HTTP/1.0").head),
            "");
  EXPECT_TRUE(upgrade_allowed({"websocket"}, "WebSocket"));
  EXPECT_FALSE(upgrade_allowed({}, "websocket"));
  EXPECT_FALSE(upgrade_allowed({"websocket"}, "foo"));
}

TEST(Upgrade, WebSocketKeysAreSixteenRandomBytesInBase64) {
  core::Random random;
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string k = websocket_key(random);
    ASSERT_EQ(k.size(), 24u) << k;
    EXPECT_EQ(k.substr(22), "==");
    EXPECT_EQ(
        k.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
        std::string::npos);
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Trailers, FromAChunkedTrailerSectionAndBack) {
  http::ChunkedDecoder d;
  std::vector<std::string_view> views;
  const std::string body = "3\r\nabc\r\n0\r\nX-Checksum: abc \r\nContent-Length: 3\r\nx-b:\r\n\r\n";
  const auto r = d.feed(body, &views);
  ASSERT_TRUE(r.done);
  EXPECT_EQ(d.trailer_lines(), "X-Checksum: abc \r\nContent-Length: 3\r\nx-b:\r\n");
  Trailers t;
  parse_trailer_lines(d.trailer_lines(), t);
  ASSERT_EQ(t.size(), 2u);  // content-length never passes as a trailer
  EXPECT_EQ(t[0], (std::pair<std::string, std::string>("x-checksum", "abc")));
  EXPECT_EQ(t[1], (std::pair<std::string, std::string>("x-b", "")));
  d.reset();
  EXPECT_EQ(d.trailer_lines(), "");

  http::ChunkEncoder enc;
  enc.set_trailers(format_trailer_lines({{"grpc-status", "0"}, {":status", "200"}}));
  std::vector<boost::asio::const_buffer> out;
  const std::string data = "hello";
  enc.encode({{data.data(), data.size()}}, true, out);
  std::string wire;
  for (const auto& b : out) wire.append(static_cast<const char*>(b.data()), b.size());
  EXPECT_EQ(wire, "5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n");
  enc.set_trailers({});
  out.clear();
  enc.encode({}, true, out);
  wire.clear();
  for (const auto& b : out) wire.append(static_cast<const char*>(b.data()), b.size());
  EXPECT_EQ(wire, "0\r\n\r\n");
}

}  // namespace
}  // namespace sidecar::proxy
