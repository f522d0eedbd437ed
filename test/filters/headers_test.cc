#include <gtest/gtest.h>

#include "config/loader.h"
#include "filters/headers/filter.h"
#include "filters/registry.h"
#include "test_callbacks.h"

namespace sidecar::filters {
namespace {

using Recorder = testing::TestCallbacks;

std::shared_ptr<const config::Config> load(const std::string& filters) {
  register_builtin();
  return config::load_string(R"(
clusters: [ { name: a, endpoints: [ "127.0.0.1:1" ] } ]
listeners:
  - name: l
    address: 127.0.0.1:0
    routes: [ { cluster: a } ]
    filters:
)" + filters,
                             "t");
}

TEST(HeadersFilter, AsksForTheConfiguredEdits) {
  auto c = load(R"(      - name: headers
        config:
          request_headers_to_add: [ { name: x-a, value: "1" } ]
          request_headers_to_remove: [ x-b ]
          response_headers_to_add: [ { name: x-c, value: "2" } ]
          response_headers_to_remove: [ server ]
)");
  ASSERT_EQ(c->listeners[0].filters.size(), 1u);
  auto filter = make_factory(c->listeners[0].filters[0])->create();
  Recorder r;
  EXPECT_EQ(filter->on_request_headers(r), http::FilterStatus::kContinue);
  http::ResponseHead response;
  filter->on_response_headers(response, r);
  EXPECT_EQ(r.log, "-req x-b;+req x-a=1;-resp server;+resp x-c=2;");
}

TEST(HeadersFilter, RejectsNamesAndValuesThatCouldSplitAHead) {
  try {
    load(R"(      - name: headers
        config:
          request_headers_to_add: [ { name: "x y", value: "a\r\nb" } ]
          unknown: 1
)");
    FAIL();
  } catch (const config::ConfigError& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("'x y' is not a field name"), std::string::npos) << all;
    EXPECT_NE(all.find("control characters in a value"), std::string::npos) << all;
    EXPECT_NE(all.find("unknown key 'unknown' in the headers filter"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace sidecar::filters
