#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/loader.h"
#include "filters/api_key/filter.h"
#include "filters/query.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

TEST(ApiKey, ParsesPlainAndHashedKeys) {
  std::vector<api_key::Entry> keys;
  std::string why;
  // sha256("k2")
  ASSERT_TRUE(
      api_key::parse_keys("# clients\nbilling: k1\nreports: sha256:"
                          "015f7e6bc5aeaf483724089e9252cc13b50951a6b69412522765cff4d780306e\n\n",
                          keys, why))
      << why;
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].client, "billing");
  EXPECT_EQ(keys[0].digest, api_key::sha256("k1"));
  EXPECT_EQ(keys[1].digest, api_key::sha256("k2"));
  EXPECT_FALSE(api_key::parse_keys("nocolon\n", keys, why));
  EXPECT_EQ(why, "line 1: expected 'client: key'");
  EXPECT_FALSE(api_key::parse_keys("a: sha256:12\n", keys, why));
}

TEST(ApiKey, FilterChecksHeaderAndParameter) {
  char tmpl[] = "/tmp/sidecar-apikey-XXXXXX";
  const std::filesystem::path dir = mkdtemp(tmpl);
  const std::string file = (dir / "keys").string();
  std::ofstream(file) << "billing: secret-1\nreports: sha256:" << [] {
    std::string hex;
    for (unsigned char c : api_key::sha256("secret-2")) {
      static constexpr char k[] = "0123456789abcdef";
      hex += k[c >> 4];
      hex += k[c & 15];
    }
    return hex;
  }() << "\n";
  register_builtin();
  auto c = config::load_string(
      R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: api_key
        config: { keys_file: )" +
          file + R"(, from_headers: [ X-Api-Key ], from_params: [ key ], client_header: x-client }
)",
      "t");
  auto factory = make_factory(c->listeners[0].filters[0]);
  auto run = [&](const std::string& path, const std::string& field, testing::TestCallbacks& r) {
    static std::string storage;
    storage = "GET " + path + " HTTP/1.1\r\nHost: a\r\n" + field + "\r\n";
    http::RequestParser parser;
    EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
    r.path_value = path;
    return factory->create()->on_request_headers(r);
  };
  {
    testing::TestCallbacks r;
    EXPECT_EQ(run("/x", "X-Api-Key: secret-1\r\n", r), http::FilterStatus::kContinue);
    EXPECT_EQ(r.log, "-req x-client;+req x-client=billing;-req x-api-key;");
  }
  {
    testing::TestCallbacks r;
    EXPECT_EQ(run("/x?a=1&key=secret-2", "", r), http::FilterStatus::kContinue);
    EXPECT_EQ(r.log, "-req x-client;+req x-client=reports;path /x?a=1;");
  }
  {
    testing::TestCallbacks r;
    EXPECT_EQ(run("/x", "X-Api-Key: wrong\r\n", r), http::FilterStatus::kStopIteration);
    EXPECT_EQ(r.reply_status, 401);
    EXPECT_EQ(r.detail, "api_key_invalid");
  }
  {
    testing::TestCallbacks r;
    EXPECT_EQ(run("/x", "", r), http::FilterStatus::kStopIteration);
    EXPECT_EQ(r.detail, "api_key_missing");
  }
  std::filesystem::remove_all(dir);
}

// The query helpers api_key and jwt_authn share (filters/query.h).
TEST(Query, ParamAndWithout) {
  EXPECT_EQ(query_param("/p?a=1&key=abc&b", "key"), "abc");
  EXPECT_EQ(query_param("/p?key&key=2", "key"), "2");  // a name alone has no value
  EXPECT_FALSE(query_param("/p?key", "key"));
  EXPECT_FALSE(query_param("/p", "key"));
  EXPECT_FALSE(query_param("/p?keys=1", "key"));
  EXPECT_EQ(query_param("/p?key=", "key"), "");
  EXPECT_EQ(without_param("/p?a=1&key=abc&b", "key"), "/p?a=1&b");
  EXPECT_EQ(without_param("/p?key=abc", "key"), "/p");
  EXPECT_EQ(without_param("/p?key&key=1&&c=2", "key"), "/p?c=2");
  EXPECT_EQ(without_param("/p", "key"), "/p");
}

}  // namespace
}  // namespace sidecar::filters
