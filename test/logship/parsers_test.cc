#include "logship/parsers.h"

#include <gtest/gtest.h>

#include <re2/re2.h>

namespace sidecar::logship {
namespace {

// A padded copy of `line`, as the pipeline gives parsers.
struct Padded {
  explicit Padded(std::string_view line) : text(line) {
    size = text.size();
    text.append(kPadding, ' ');
  }
  std::string_view view() const { return {text.data(), size}; }
  std::string text;
  size_t size;
};

std::string as_json(const Batch& b) {
  std::string out;
  append_json(out, b, b.records.back());
  return out;
}

TEST(JsonParser, KeepsTokensAndReencodesValidJson) {
  JsonParser p;
  Batch b;
  b.begin(0);
  Padded line(
      R"({"a": 1.50, "b":"x\"y", "c" :[1, {"d":null}], "e":true, "f":"tab\there", "\u00e9":"k"})");
  ASSERT_TRUE(p.parse(line.view(), b));
  const std::string out = as_json(b);
  EXPECT_EQ(out,
            R"({"a":1.50,"b":"x\"y","c":[1, {"d":null}],"e":true,"f":"tab\there","\u00e9":"k"})");
  Batch raw_tab;
  raw_tab.begin(0);
  Padded bad("{\"f\":\"raw\ttab\"}");  // control characters must be escaped in JSON
  EXPECT_FALSE(p.parse(bad.view(), raw_tab));
  EXPECT_TRUE(p.validate(out));
}

TEST(JsonParser, RejectsWhatIsNotOneObject) {
  JsonParser p;
  for (std::string_view bad : {"", "[1,2]", "{\"a\":}", "{\"a\":1} x", "{\"a\":tru}", "{\"a\":01}",
                               "{\"a\":\"\\q\"}", "{\"a\":[1,}", "{\"a\":1", "not json"}) {
    Batch b;
    b.begin(0);
    Padded line(bad);
    EXPECT_FALSE(p.parse(line.view(), b)) << bad;
    EXPECT_EQ(b.records.back().field_count, 0u) << bad;
    EXPECT_TRUE(b.arena.empty()) << bad;
  }
}

TEST(Logfmt, PairsQuotedValuesAndBareKeys) {
  Batch b;
  b.begin(0);
  ASSERT_TRUE(parse_logfmt(R"(level=info msg="hello \"you\"" debug n=3)", b));
  EXPECT_EQ(as_json(b), R"({"level":"info","msg":"hello \"you\"","debug":true,"n":"3"})");
  Batch c;
  c.begin(0);
  EXPECT_FALSE(parse_logfmt("just words here", c));
  EXPECT_FALSE(parse_logfmt(R"(a="unterminated)", c));
  EXPECT_EQ(c.records.back().field_count, 0u);
}

TEST(Syslog, Rfc5424) {
  Batch b;
  b.begin(0);
  ASSERT_TRUE(parse_syslog(
      R"(<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\]x"] An application event)",
      b));
  EXPECT_EQ(
      as_json(b),
      R"({"pri":165,"time":"2003-10-11T22:14:15.003Z","host":"mymachine.example.com","ident":"evntslog","msgid":"ID47","extradata":"[exampleSDID@32473 iut=\"3\" eventSource=\"App\\]x\"]","message":"An application event"})");
  EXPECT_EQ(b.records.back().time_ns, 1065910455003000000);
}

TEST(Syslog, Rfc3164WithAndWithoutPri) {
  Batch b;
  b.begin(0);
  ASSERT_TRUE(parse_syslog("<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed", b));
  EXPECT_EQ(
      as_json(b),
      R"({"pri":34,"time":"Oct 11 22:14:15","host":"mymachine","ident":"su","pid":"123","message":"'su root' failed"})");
  Batch c;
  c.begin(0);
  ASSERT_TRUE(parse_syslog("Oct  1 02:03:04 host cron: job", c));
  EXPECT_EQ(as_json(c),
            R"({"time":"Oct  1 02:03:04","host":"host","ident":"cron","message":"job"})");
  Batch d;
  d.begin(0);
  EXPECT_FALSE(parse_syslog("<999>1 x", d));
  EXPECT_FALSE(parse_syslog("plain text", d));
}

TEST(Cri, SplitsTheParts) {
  CriLine c;
  ASSERT_TRUE(split_cri("2016-10-06T00:17:09.669794202Z stdout P part one", c));
  EXPECT_EQ(c.stream, "stdout");
  EXPECT_TRUE(c.partial);
  EXPECT_EQ(c.message, "part one");
  ASSERT_TRUE(split_cri("2016-10-06T00:17:09.669794202Z stderr F", c));
  EXPECT_FALSE(c.partial);
  EXPECT_EQ(c.message, "");
  EXPECT_FALSE(split_cri("2016-10-06 stdout F x", c));
  EXPECT_FALSE(split_cri("2016-10-06T00:17:09Z other F x", c));
}

TEST(Parsers, CriEnvelopeThenJson) {
  ParserConfig cri;
  cri.kind = ParserConfig::Kind::kCri;
  cri.time_key = "time";
  cri.keep_time_key = false;
  ParserConfig json;
  json.kind = ParserConfig::Kind::kJson;
  Parsers parsers({cri, json});
  Batch b;
  b.begin(0);
  Padded line(R"(2016-10-06T00:17:09.5Z stdout F {"level":"warn","n":1})");
  ASSERT_TRUE(parsers.parse(line.view(), b));
  EXPECT_EQ(as_json(b), R"({"stream":"stdout","logtag":"F","level":"warn","n":1})");
  EXPECT_EQ(b.records.back().time_ns, 1475713029500000000);
}

TEST(Parsers, DockerJsonFile) {
  ParserConfig docker;
  docker.kind = ParserConfig::Kind::kDocker;
  docker.time_key = "time";
  docker.keep_time_key = false;
  Parsers parsers({docker});
  Batch b;
  b.begin(0);
  Padded line(R"({"log":"hello\n","stream":"stderr","time":"2019-01-01T11:11:11.111111111Z"})");
  ASSERT_TRUE(parsers.parse(line.view(), b));
  EXPECT_EQ(as_json(b), R"({"message":"hello","stream":"stderr"})");
  EXPECT_EQ(b.records.back().time_ns, 1546341071111111111);
}

TEST(Parsers, CombinedAccessLog) {
  Batch b;
  b.begin(0);
  ASSERT_TRUE(parse_combined(
      R"(192.168.1.5 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://example.com/start" "Mozilla/4.08")",
      b));
  EXPECT_EQ(
      as_json(b),
      R"({"remote":"192.168.1.5","user":"frank","time":"10/Oct/2000:13:55:36 -0700","method":"GET","path":"/apache_pb.gif","protocol":"HTTP/1.0","code":200,"size":2326,"referer":"http://example.com/start","agent":"Mozilla/4.08"})");
  EXPECT_EQ(b.records.back().time_ns, 971211336000000000);
}

TEST(Parsers, RegexNamedGroupsAndTime) {
  ParserConfig c;
  c.kind = ParserConfig::Kind::kRegex;
  c.regex = std::make_shared<re2::RE2>(R"(^(?P<ts>\S+) (?P<level>\w+) (?P<message>.*)$)");
  c.time_key = "ts";
  c.time_format = "%Y-%m-%dT%H:%M:%S%z";
  Parsers parsers({c});
  Batch b;
  b.begin(0);
  Padded line("2020-01-02T03:04:05+0100 INFO started ok");
  ASSERT_TRUE(parsers.parse(line.view(), b));
  EXPECT_EQ(as_json(b),
            R"({"ts":"2020-01-02T03:04:05+0100","level":"INFO","message":"started ok"})");
  EXPECT_EQ(b.records.back().time_ns, 1577930645000000000);
}

TEST(Time, Formats) {
  int64_t t = 0;
  ASSERT_TRUE(parse_time("1970-01-01T00:00:01.5+00:00", "", t));
  EXPECT_EQ(t, 1500000000);
  ASSERT_TRUE(parse_time("1.25", "unix", t));
  EXPECT_EQ(t, 1250000000);
  ASSERT_TRUE(parse_time("1500", "unix_ms", t));
  EXPECT_EQ(t, 1500000000);
  EXPECT_FALSE(parse_time("2020-13-01T00:00:00Z", "rfc3339", t));
  EXPECT_FALSE(parse_time("yesterday", "%Y-%m-%d", t));
}

}  // namespace
}  // namespace sidecar::logship
