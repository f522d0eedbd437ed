#include "sync/config.h"

#include <gtest/gtest.h>

#include "config/config_errors.h"
#include "config/loader.h"

namespace sidecar::sync {
namespace {

std::vector<std::string> errors_of(const std::string& yaml) {
  register_module();
  return config::testing::errors_of(yaml);
}

using config::testing::has_error;

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
    link: ../b
    notify: [ { signal: SIGFOO }, { exec: [] }, {} ]
)");
  EXPECT_TRUE(has_error(e, "test.yaml:3:5: sync[0] takes one of git or http"));
  EXPECT_TRUE(has_error(e, "sync[0].root must be an absolute path"));
  EXPECT_TRUE(has_error(e, "ssh needs known_hosts"));
  EXPECT_TRUE(has_error(e, "sync[1].http.url must be an http:// or https:// URL"));
  EXPECT_TRUE(has_error(e, "sync[1].link must be an absolute path, or a path inside root"));
  EXPECT_TRUE(has_error(e, "unknown signal 'SIGFOO'"));
  EXPECT_TRUE(has_error(e, "sync[1].notify[1].exec must not be empty"));
  EXPECT_TRUE(has_error(e, "sync[1].notify[2] takes one of signal, webhook or exec"));
}

TEST(SyncConfig, ParsesTheGitSyncSettings) {
  register_module();
  auto c = config::load_string(R"(
sync:
  - name: site
    git:
      repo: "https://example.com/r.git"
      ref: 0123456789abcdef0123456789abcdef01234567
      depth: 0
      submodules: shallow
      sparse_checkout: [ "/docs/", "!/docs/private/" ]
      filter: "blob:none"
      git_gc: aggressive
      git_config: { http.sslCAInfo: /ca.pem, "http.https://x/.extraHeader": "X-A: b" }
      credentials: [ { url: "https://sub.example.com", username: bob, password_file: /pw } ]
      askpass_url: "http://127.0.0.1:9/creds"
      cookie_file: /cookies
    http_proxy: "http://proxy:3128"
    root: /srv/site
    link: pub/html
    touch_file: synced
    error_file: /var/run/sync.err
    group_write: true
    pre_publish: { exec: [ "./check" ], timeout: 5s }
    notify:
      - { webhook: "http://127.0.0.1:8080/reload", status: 0, max_interval: 2s }
      - { exec: [ "true" ], retries: 2 }
)",
                               "t");
  const SyncConfig& e = c->section_as<Section>("sync")->syncs[0];
  EXPECT_EQ(e.depth, 0u);
  EXPECT_EQ(e.submodules, Submodules::kShallow);
  EXPECT_EQ(e.sparse_checkout.size(), 2u);
  EXPECT_EQ(e.filter, "blob:none");
  EXPECT_EQ(e.git_gc, GitGc::kAggressive);
  ASSERT_EQ(e.git_config.size(), 2u);
  EXPECT_EQ(e.git_config[1].first, "http.https://x/.extraHeader");
  ASSERT_EQ(e.credentials.size(), 1u);
  EXPECT_EQ(e.credentials[0].username, "bob");
  EXPECT_EQ(e.http_proxy, "http://proxy:3128");
  EXPECT_EQ(e.link_path(), "/srv/site/pub/html");
  EXPECT_EQ(e.touch_file, "/srv/site/synced");
  EXPECT_EQ(e.error_file, "/var/run/sync.err");
  EXPECT_TRUE(e.group_write);
  EXPECT_EQ(e.pre_publish, std::vector<std::string>{"./check"});
  EXPECT_EQ(e.pre_publish_timeout, std::chrono::seconds(5));
  EXPECT_EQ(e.hooks[0].status, 0);
  EXPECT_EQ(e.hooks[0].max_interval, std::chrono::seconds(2));
  EXPECT_FALSE(e.hooks[0].retries_set);
  EXPECT_EQ(e.hooks[1].retries, 2u);
  EXPECT_EQ(e.hooks[1].status, -1);  // any 2xx
}

TEST(SyncConfig, DefaultsAreGitSyncs) {
  register_module();
  auto c =
      config::load_string("sync: [ { name: s, git: { repo: \"git://h/r\" }, root: /srv } ]\n", "t");
  const SyncConfig& e = c->section_as<Section>("sync")->syncs[0];
  EXPECT_EQ(e.depth, 1u);
  EXPECT_EQ(e.submodules, Submodules::kRecursive);
  EXPECT_EQ(e.git_gc, GitGc::kAuto);
  EXPECT_EQ(e.link_path(), "/srv/current");
}

TEST(SyncConfig, RejectsBadGitSettings) {
  auto e = errors_of(R"(
sync:
  - name: a
    git:
      repo: "https://example.com/r.git"
      ref: "-x"
      submodules: sometimes
      git_gc: never
      git_config: { nodot: 1 }
      credentials: [ { url: "ftp://x", username: u } ]
      filter: "blob none"
    root: /srv
    link: /srv/.revisions/x
  - name: b
    git: { repo: "git@github.com:org/r.git" }
    root: /srv
    pre_publish: { timeout: 1s }
    notify: [ { webhook: "http://x/", status: 42 } ]
)");
  EXPECT_TRUE(has_error(e, "sync[0].git.ref must be a branch, a tag, a commit id or HEAD"));
  EXPECT_TRUE(has_error(e, "sync[0].git.submodules must be one of recursive, shallow, off"));
  EXPECT_TRUE(has_error(e, "sync[0].git.git_gc must be one of auto, always, aggressive, off"));
  EXPECT_TRUE(has_error(e, "'nodot' is not a git config key"));
  EXPECT_TRUE(has_error(e, "sync[0].git.credentials[0] needs a password_file"));
  EXPECT_TRUE(has_error(e, "sync[0].git.credentials[0].url must be an http:// or https:// URL"));
  EXPECT_TRUE(has_error(e, "sync[0].git.filter must be a git filter spec"));
  EXPECT_TRUE(has_error(e, "sync[0].link must not be root or inside sidecar's state"));
  EXPECT_TRUE(has_error(e, "ssh needs known_hosts"));
  EXPECT_TRUE(has_error(e, "sync[1].root is also sync[0].root"));
  EXPECT_TRUE(has_error(e, "sync[1].pre_publish needs exec"));
  EXPECT_TRUE(has_error(e, "status must be 0 (not checked) or 100-599"));
}

}  // namespace
}  // namespace sidecar::sync
