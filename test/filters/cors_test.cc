#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

std::shared_ptr<const config::Config> load() {
  register_builtin();
  return config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
      - name: cors
        config:
          allow_origin_string_match: [ { exact: "https://app.example" }, { suffix: ".trusted.example" } ]
          allow_methods: "GET, POST"
          allow_headers: "content-type"
          expose_headers: "x-request-id"
          max_age: "600"
          allow_credentials: true
)",
                             "t");
}

struct Exchange {
  testing::TestCallbacks r;
  std::string storage;
  http::FilterStatus status;
  Exchange(const std::string& method, const std::string& fields) {
    static auto config = load();
    storage = method + " / HTTP/1.1\r\nHost: api\r\n" + fields + "\r\n";
    http::RequestParser parser;
    EXPECT_EQ(parser.feed(storage, r.head).status, http::HeadResult::kDone);
    auto filter = make_factory(config->listeners[0].filters[0])->create();
    status = filter->on_request_headers(r);
    http::ResponseHead response;
    filter->on_response_headers(response, r);
  }
};

TEST(CorsFilter, AnswersPreflightsFromAllowedOrigins) {
  Exchange e("OPTIONS", "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n");
  EXPECT_EQ(e.status, http::FilterStatus::kStopIteration);
  ASSERT_TRUE(e.r.response);
  EXPECT_EQ(e.r.response->status, 200);
  std::string h;
  for (const auto& [k, v] : e.r.response->headers) h += k + "=" + v + ";";
  EXPECT_EQ(h,
            "access-control-allow-origin=https://app.example;access-control-allow-methods=GET, "
            "POST;access-control-allow-headers=content-type;access-control-max-age=600;"
            "access-control-allow-credentials=true;vary=Origin;");
  EXPECT_EQ(e.r.log, "response 200;");  // the local reply is not decorated twice
}

TEST(CorsFilter, DecoratesAllowedOriginsOnly) {
  Exchange ok("GET", "Origin: https://a.trusted.example\r\n");
  EXPECT_EQ(ok.status, http::FilterStatus::kContinue);
  EXPECT_EQ(ok.r.log,
            "-resp access-control-allow-origin;+resp access-control-allow-origin=https://"
            "a.trusted.example;-resp access-control-allow-credentials;+resp "
            "access-control-allow-credentials=true;-resp access-control-expose-headers;+resp "
            "access-control-expose-headers=x-request-id;+resp vary=Origin;");
  Exchange evil("GET", "Origin: https://evil.example\r\n");
  EXPECT_EQ(evil.status, http::FilterStatus::kContinue);
  EXPECT_EQ(evil.r.log, "");
  Exchange evil_preflight("OPTIONS",
                          "Origin: https://trusted.example.evil\r\nAccess-Control-Request-Method: "
                          "GET\r\n");
  EXPECT_EQ(evil_preflight.status, http::FilterStatus::kContinue);
  EXPECT_FALSE(evil_preflight.r.response);
  Exchange none("GET", "");
  EXPECT_EQ(none.r.log, "");
}

}  // namespace
}  // namespace sidecar::filters
