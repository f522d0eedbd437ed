#include "sync/config.h"

#include <gtest/gtest.h>

#include "config/loader.h"

namespace sidecar::sync {
namespace {

std::vector<std::string> errors_of(const std::string& yaml) {
  register_module();
  try {
    config::load_string(yaml, "test.yaml");
  } catch (const config::ConfigError& e) {
    return e.messages();
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return {};
}

bool has_error(const std::vector<std::string>& errors, const std::string& text) {
  for (const auto& e : errors) {
    if (e.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(SyncConfig, ParsesEntriesAndHooks) {
  register_module();
  auto c = config::load_string(R"(
sync:
  - name: site
    git: { repo: "https://example.com/r.git", ref: v1, credentials_file: /c }
    root: /srv/site
    notify:
      - { signal: SIGHUP }
      - { webhook: "http://127.0.0.1:8080/reload", status: 204, retries: 1 }
      - { exec: [ "sh", "-c", "true" ], timeout: 2s }
)",
                               "t");
  auto s = c->section_as<Section>("sync");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->syncs.size(), 1u);
  const SyncConfig& e = s->syncs[0];
  EXPECT_EQ(e.git_ref, "v1");
  EXPECT_EQ(e.link, "current");
  ASSERT_EQ(e.hooks.size(), 3u);
  EXPECT_EQ(e.hooks[0].signal, 1);
  EXPECT_EQ(e.hooks[1].status, 204);
  EXPECT_EQ(e.hooks[2].command.size(), 3u);
  EXPECT_NE(c->section("sync")->json.find("\"ref\":\"v1\""), std::string::npos);
}

TEST(SyncConfig, ReportsEveryProblemWithItsPosition) {
  auto e = errors_of(R"(
sync:
  - name: a
    root: relative/path
  - name: b
    git: { repo: "ssh://git@example.com/r.git" }
    http: { url: "ftp://x" }
    root: /x
    link: a/b
    notify: [ { signal: SIGFOO }, { exec: [] }, {} ]
)");
  EXPECT_TRUE(has_error(e, "test.yaml:3:5: sync[0] takes one of git or http"));
  EXPECT_TRUE(has_error(e, "sync[0].root must be an absolute path"));
  EXPECT_TRUE(has_error(e, "ssh needs known_hosts"));
  EXPECT_TRUE(has_error(e, "sync[1].http.url must be an http:// or https:// URL"));
  EXPECT_TRUE(has_error(e, "sync[1].link must be a plain name inside root"));
  EXPECT_TRUE(has_error(e, "unknown signal 'SIGFOO'"));
  EXPECT_TRUE(has_error(e, "sync[1].notify[1].exec must not be empty"));
  EXPECT_TRUE(has_error(e, "sync[1].notify[2] takes one of signal, webhook or exec"));
}

}  // namespace
}  // namespace sidecar::sync
