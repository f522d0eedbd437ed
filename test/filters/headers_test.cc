#include <unistd.h>

#include <gtest/gtest.h>

#include "config/access_log_format.h"
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

std::unique_ptr<http::HttpFilter> make(const std::string& config) {
  auto c = load("      - name: headers\n        config:\n" + config);
  return make_factory(c->listeners[0].filters[0])->create();
}

http::HeaderField field(std::string_view n, std::string_view v) { return {n, v, 0, 0}; }

std::string config_error(const std::string& config) {
  try {
    load("      - name: headers\n        config:\n" + config);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(HeadersFilter, AppendActionsOnTheRequest) {
  auto filter = make(R"(          request_headers_to_add:
            - { name: x-append, value: a }
            - { name: x-append, value: a2, append_action: APPEND_IF_EXISTS_OR_ADD }
            - { name: x-absent, value: b, append_action: ADD_IF_ABSENT }
            - { name: x-present, value: c, append_action: ADD_IF_ABSENT }
            - { name: x-present, value: d, append_action: OVERWRITE_IF_EXISTS_OR_ADD }
            - { name: x-new, value: e, append_action: OVERWRITE_IF_EXISTS_OR_ADD }
            - { name: X-Present, value: f, append_action: OVERWRITE_IF_EXISTS }
            - { name: x-none, value: g, append_action: OVERWRITE_IF_EXISTS }
            - { name: x-gone, value: h, append_action: ADD_IF_ABSENT }
          request_headers_to_remove: [ x-gone ]
)");
  Recorder r;
  r.head.headers = {field("X-Append", "0"), field("x-present", "old"), field("x-gone", "1")};
  filter->on_request_headers(r);
  EXPECT_EQ(r.log,
            "-req x-gone;+req x-append=a;+req x-append=a2;+req x-absent=b;"
            "-req x-present;+req x-present=d;+req x-new=e;-req X-Present;+req X-Present=f;"
            "+req x-gone=h;");
}

TEST(HeadersFilter, AppendActionsOnTheResponse) {
  auto filter = make(R"(          response_headers_to_add:
            - { name: x-append, value: a }
            - { name: x-absent, value: b, append_action: ADD_IF_ABSENT }
            - { name: server, value: c, append_action: ADD_IF_ABSENT }
            - { name: server, value: d, append_action: OVERWRITE_IF_EXISTS_OR_ADD }
            - { name: x-new, value: e, append_action: OVERWRITE_IF_EXISTS_OR_ADD }
            - { name: server, value: f, append_action: OVERWRITE_IF_EXISTS }
            - { name: x-none, value: g, append_action: OVERWRITE_IF_EXISTS }
)");
  Recorder r;
  http::ResponseHead response;
  response.headers = {field("Server", "app"), field("x-append", "0")};
  filter->on_response_headers(response, r);
  EXPECT_EQ(r.log,
            "+resp x-append=a;+resp x-absent=b;-resp server;+resp server=d;+resp x-new=e;"
            "-resp server;+resp server=f;");
}

TEST(HeadersFilter, RendersEachVariable) {
  auto filter = make(R"(          request_headers_to_add:
            - { name: x-ip, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" }
            - { name: x-addr, value: "%DOWNSTREAM_REMOTE_ADDRESS%" }
            - { name: x-in, value: "in=%REQ(X-In)%;ua=%REQ(user-agent):3%;alt=%REQ(x-no?x-in)%" }
            - { name: x-req, value: "%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)% %PROTOCOL%" }
            - { name: x-start, value: "%START_TIME%" }
            - { name: x-host, value: "%HOSTNAME%" }
            - { name: x-names, value: "%LISTENER_NAME%/%ROUTE_NAME%/%UPSTREAM_CLUSTER%" }
            - { name: x-pct, value: "100%% %%%REQ(x-in)%%%" }
          response_headers_to_add:
            - { name: x-upstream, value: "%UPSTREAM_HOST%" }
            - { name: x-status, value: "%RESPONSE_CODE% %RESP(content-type)%" }
)");
  Recorder r;
  r.peer = "192.0.2.7";
  r.peer_address_value = "192.0.2.7:4321";
  r.authority_value = "svc.local";
  r.head.method_name = "GET";
  r.head.target = "/a?b";
  r.head.headers = {field("x-in", "v1"), field("User-Agent", "curl/8")};
  r.upstream_host_value = "127.0.0.1:9000";
  filter->on_request_headers(r);
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(r.log,
            "+req x-ip=192.0.2.7;+req x-addr=192.0.2.7:4321;+req x-in=in=v1;ua=cur;alt=v1;"
            "+req x-req=GET /a?b svc.local HTTP/1.1;+req x-start=2023-11-14T22:13:20.123Z;"
            "+req x-host=" +
                std::string(host) +
                ";+req x-names=in/in/0/app;"
                "+req x-pct=100% %v1%;");
  r.log.clear();
  http::ResponseHead response;
  response.status = 503;
  response.headers = {field("Content-Type", "text/plain")};
  filter->on_response_headers(response, r);
  EXPECT_EQ(r.log, "+resp x-upstream=127.0.0.1:9000;+resp x-status=503 text/plain;");
}

TEST(HeadersFilter, AnEmptyValueAddsNothingUnlessKept) {
  auto filter = make(R"(          request_headers_to_add:
            - { name: x-missing, value: "%REQ(x-absent)%" }
            - { name: x-upstream, value: "%UPSTREAM_HOST%" }
            - { name: x-kept, value: "%REQ(x-absent)%", keep_empty_value: true }
            - { name: x-over, value: "%REQ(x-absent)%", append_action: OVERWRITE_IF_EXISTS_OR_ADD }
            - { name: x-partly, value: "[%UPSTREAM_HOST%]" }
)");
  Recorder r;
  r.head.headers = {field("x-over", "keep me")};
  filter->on_request_headers(r);
  // x-over: Envoy leaves the received field alone when the value is empty.
  EXPECT_EQ(r.log, "+req x-kept=;+req x-partly=[];");
}

TEST(HeadersFilter, VariableErrorsPointAtTheOperator) {
  std::string e = config_error(R"(          request_headers_to_add:
            - { name: x-a, value: "ab%NO_SUCH%" }
)");
  EXPECT_NE(e.find("t:11:38: request_headers_to_add[0]: unknown operator %NO_SUCH%"),
            std::string::npos)
      << e;
  e = config_error(R"(          response_headers_to_add:
            - { name: x-a, value: x%DURATION% }
)");
  EXPECT_NE(e.find("t:11:36: response_headers_to_add[0]: %DURATION% is not available in the "
                   "headers filter"),
            std::string::npos)
      << e;
  e = config_error(R"(          request_headers_to_add:
            - { name: x-a, value: "%REQ(x" }
)");
  EXPECT_NE(e.find("t:11:36: request_headers_to_add[0]: unterminated % operator"),
            std::string::npos)
      << e;
  e = config_error(R"(          request_headers_to_add:
            - { name: x-a, value: b, append_action: APPEND }
)");
  EXPECT_NE(e.find("t:11:53: request_headers_to_add[0]: append_action must be one of"),
            std::string::npos)
      << e;
  e = config_error(R"(          request_headers_to_add:
            - { name: x-a, value: b, append: true, append_action: ADD_IF_ABSENT }
)");
  EXPECT_NE(e.find("t:11:46: request_headers_to_add[0]: append and append_action are both set"),
            std::string::npos)
      << e;
  e = config_error(R"(          request_headers_to_add:
            - { name: x-a, value: b, apend: true }
)");
  EXPECT_NE(e.find("t:11:38: unknown key 'apend'"), std::string::npos) << e;
}

TEST(HeadersFilter, EnvoysDeprecatedAppendFlag) {
  auto filter = make(R"(          request_headers_to_add:
            - { name: x-a, value: new, append: false }
            - { name: x-b, value: more, append: true }
)");
  Recorder r;
  r.head.headers = {field("x-a", "old"), field("x-b", "old")};
  filter->on_request_headers(r);
  EXPECT_EQ(r.log, "-req x-a;+req x-a=new;+req x-b=more;");
}

TEST(HeadersFilter, SharedFormatParserEscapesPercentAndKnowsHostname) {
  std::string error;
  size_t offset = 0;
  auto t = config::parse_log_format("a%%b%START_TIME%%HOSTNAME%%%", error, offset);
  ASSERT_TRUE(t.has_value()) << error;
  using K = config::LogToken::Kind;
  ASSERT_EQ(t->size(), 5u);
  EXPECT_EQ((*t)[0].kind, K::kLiteral);
  EXPECT_EQ((*t)[0].text, "a%");
  EXPECT_EQ((*t)[1].text, "b");
  EXPECT_EQ((*t)[2].kind, K::kStartTime);
  EXPECT_EQ((*t)[3].kind, K::kHostname);
  EXPECT_EQ((*t)[4].text, "%");
  EXPECT_FALSE(config::parse_log_format("x%%%", error, offset).has_value());
  EXPECT_EQ(offset, 3u);
}

}  // namespace
}  // namespace sidecar::filters
