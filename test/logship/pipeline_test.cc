// Records, chunk files, multiline, filters and the logs config.
#include <gtest/gtest.h>

#include "config/config_errors.h"

#include <re2/re2.h>

#include "config/loader.h"
#include "logship/buffer.h"
#include "logship/config.h"
#include "logship/filters.h"
#include "logship/multiline.h"
#include "logship/record.h"

namespace sidecar::logship {
namespace {

TEST(Records, EscapeAndUtf8) {
  std::string out;
  append_escaped(out, std::string_view("a\"b\\c\n\x01", 7));
  EXPECT_EQ(out, R"(a\"b\\c\n\u0001)");
  std::string fixed;
  EXPECT_EQ(append_utf8_replacing(fixed, "ok \xc3\xa9 \xff \xe2\x82"), 3u);
  EXPECT_EQ(fixed, "ok \xc3\xa9 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_TRUE(valid_utf8(fixed));
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));  // a surrogate
  std::string un;
  ASSERT_TRUE(unescape_json(R"(\u00e9\ud83d\ude00\n)", un));
  EXPECT_EQ(un, "\xc3\xa9\xf0\x9f\x98\x80\n");
  std::string t;
  append_rfc3339(t, 1500000001);
  EXPECT_EQ(t, "1970-01-01T00:00:01.500000001Z");
}

TEST(Chunks, RoundTripAndCorruption) {
  Batch b;
  b.tag = "app";
  b.begin(42);
  b.add("message", "hello", ValueKind::kString);
  b.add("n", "7", ValueKind::kNumber);
  b.begin(43);
  b.add("k", "v\\n", ValueKind::kEscaped, true);
  std::string chunk;
  encode_chunk(b, chunk);
  Batch back;
  ASSERT_TRUE(decode_chunk(chunk, back));
  EXPECT_EQ(back.tag, "app");
  ASSERT_EQ(back.records.size(), 2u);
  std::string x, y;
  append_json(x, b, b.records[0]);
  append_json(y, back, back.records[0]);
  EXPECT_EQ(x, y);
  EXPECT_EQ(back.records[1].time_ns, 43);
  for (size_t i : {size_t{0}, size_t{10}, chunk.size() - 1}) {
    std::string bad = chunk;
    bad[i] ^= 0x20;
    Batch out;
    EXPECT_FALSE(decode_chunk(bad, out)) << i;
  }
  Batch out;
  EXPECT_FALSE(decode_chunk(chunk.substr(0, chunk.size() - 1), out));
}

std::vector<std::string> run(MultilineConfig::Mode mode, const std::vector<std::string>& lines) {
  MultilineConfig c;
  c.mode = mode;
  Multiline m(c);
  std::vector<std::string> out;
  auto emit = [&](std::string_view text, uint32_t) { out.emplace_back(text); };
  for (const auto& l : lines) m.feed(l, 0, emit);
  m.flush(emit);
  return out;
}

TEST(Multiline, Java) {
  auto out = run(MultilineConfig::Mode::kJava,
                 {"ERROR x", "java.lang.RuntimeException: a", "\tat A.b(A.java:1)", "Caused by: B",
                  "\t... 3 more", "INFO next"});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1],
            "java.lang.RuntimeException: a\n\tat A.b(A.java:1)\nCaused by: B\n\t... 3 more");
}

TEST(Multiline, Python) {
  auto out = run(MultilineConfig::Mode::kPython,
                 {"start", "Traceback (most recent call last):", "  File \"x.py\", line 1",
                  "    raise ValueError(1)", "ValueError: 1", "after"});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1],
            "Traceback (most recent call last):\n  File \"x.py\", line 1\n    raise "
            "ValueError(1)\nValueError: 1");
  EXPECT_EQ(out[2], "after");
}

TEST(Multiline, Go) {
  auto out = run(MultilineConfig::Mode::kGo,
                 {"panic: boom", "", "goroutine 1 [running]:", "main.main()",
                  "\t/app/main.go:5 +0x1d", "exit status 2", "level=info next"});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].substr(0, 11), "panic: boom");
  EXPECT_EQ(out[1], "level=info next");
}

TEST(Multiline, StartPatternMaxLinesAndTimeout) {
  MultilineConfig c;
  c.mode = MultilineConfig::Mode::kStart;
  c.start = std::make_shared<re2::RE2>("^\\d");
  c.max_lines = 3;
  c.timeout = std::chrono::milliseconds(100);
  Multiline m(c);
  std::vector<std::string> out;
  auto emit = [&](std::string_view text, uint32_t) { out.emplace_back(text); };
  m.feed("1 a", 0, emit);
  m.feed(" b", 10, emit);
  m.feed(" c", 20, emit);  // max_lines
  m.feed(" d", 30, emit);
  EXPECT_FALSE(m.expired(100));
  EXPECT_TRUE(m.expired(130));
  m.flush(emit);
  EXPECT_EQ(out, (std::vector<std::string>{"1 a\n b\n c", " d"}));
}

TEST(Filters, Chain) {
  std::vector<FilterConfig> fs(5);
  fs[0].kind = FilterConfig::Kind::kAdd;
  fs[0].pairs = {{"pod", "web-1"}};
  fs[1].kind = FilterConfig::Kind::kRename;
  fs[1].pairs = {{"msg", "message"}};
  fs[2].kind = FilterConfig::Kind::kRemove;
  fs[2].keys = {"secret"};
  fs[3].kind = FilterConfig::Kind::kRedact;
  fs[3].regex = std::make_shared<re2::RE2>("\\b\\d{4}-\\d{4}-\\d{4}-\\d{4}\\b");
  fs[4].kind = FilterConfig::Kind::kGrep;
  fs[4].field = "level";
  fs[4].regex = std::make_shared<re2::RE2>("^debug$");
  fs[4].exclude = true;
  Filters f(fs);
  Filters::SourceState st;
  Batch b;
  b.begin(0);
  b.add("msg", "card 1234-5678-9012-3456 ok", ValueKind::kString);
  b.add("secret", "x", ValueKind::kString);
  b.add("level", "info", ValueKind::kString);
  ASSERT_EQ(f.apply(b, st, 0), Filters::Verdict::kKeep);
  std::string out;
  append_json(out, b, b.records.back());
  EXPECT_EQ(out, R"({"message":"card [REDACTED] ok","level":"info","pod":"web-1"})");
  b.begin(0);
  b.add("level", "debug", ValueKind::kString);
  EXPECT_EQ(f.apply(b, st, 0), Filters::Verdict::kGrep);

  std::vector<FilterConfig> limit(1);
  limit[0].kind = FilterConfig::Kind::kRateLimit;
  limit[0].records = 2;
  Filters rl(limit);
  Batch c;
  int kept = 0;
  for (int i = 0; i < 5; ++i) {
    c.begin(0);
    kept += rl.apply(c, st, 1000) == Filters::Verdict::kKeep;
  }
  EXPECT_EQ(kept, 2);
  c.begin(0);
  EXPECT_EQ(rl.apply(c, st, 2'000'000'000), Filters::Verdict::kKeep);  // a new window
}

std::vector<std::string> errors_of(const std::string& yaml) {
  register_module();
  return config::testing::errors_of(yaml);
}

TEST(LogsConfig, ParsesTheIssuesExample) {
  register_module();
  ::setenv("APP", "shop", 1);
  auto c = config::load_string(R"(
logs:
  state_dir: /var/lib/sidecar/logs
  inputs:
    - name: app
      file: { paths: [ /shared/logs/*.log ], exclude: [ "*.gz" ], read_from: head }
      parser: json
    - name: stdout
      app_stdout: {}
      parser: logfmt
  outputs:
    - name: collector
      match: [ app, stdout ]
      tcp: { address: 127.0.0.1:5170, format: json_lines }
    - name: loki
      match: [ app ]
      loki: { url: http://loki:3100/loki/api/v1/push, labels: { app: "${APP}" } }
)",
                               "t");
  auto s = c->section_as<Section>("logs");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->inputs.size(), 2u);
  EXPECT_EQ(s->inputs[1].kind, InputConfig::Kind::kAppStdout);
  ASSERT_EQ(s->outputs.size(), 2u);
  EXPECT_EQ(s->outputs[0].port, 5170);
  EXPECT_EQ(s->outputs[1].host, "loki");
  EXPECT_EQ(s->outputs[1].port, 3100);
  EXPECT_EQ(s->outputs[1].url, "/loki/api/v1/push");
  EXPECT_EQ(s->outputs[1].labels.at("app"), "shop");
}

TEST(LogsConfig, ReportsProblemsWithPositions) {
  auto e = errors_of(R"(
logs:
  inputs:
    - name: a
      file: { paths: [ relative.log ] }
      parser: yaml
    - name: b
      app_stdout: {}
      multiline: { start: "(" }
  outputs:
    - name: o
      match: [ nothing ]
      http: { url: "https://x" }
)");
  auto has = [&](const std::string& s) {
    for (const auto& m : e) {
      if (m.find(s) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("test.yaml:5:")) << e[0];
  EXPECT_TRUE(has("paths must be absolute"));
  EXPECT_TRUE(has("unknown parser 'yaml'"));
  EXPECT_TRUE(has("invalid regex"));
  EXPECT_TRUE(has("https:// is not supported yet"));
  EXPECT_TRUE(has("input 'a' matches no output"));
  EXPECT_TRUE(has("output 'o' matches no input"));
}

}  // namespace
}  // namespace sidecar::logship
