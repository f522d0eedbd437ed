#include "sync/git_text.h"

#include <gtest/gtest.h>

#include "sync/hooks.h"

namespace sidecar::sync {
namespace {

const std::string kA(40, 'a'), kB(40, 'b'), kC(40, 'c'), kD(40, 'd');

TEST(GitText, ParsesLsRemoteAndResolvesRefsInGitsOrder) {
  const auto refs = parse_ls_remote(kA + "\tHEAD\n" + kA + "\trefs/heads/main\n" + kB +
                                    "\trefs/tags/v1\n" + kC + "\trefs/tags/v1^{}\n" + kD +
                                    "\trefs/heads/v1\nnot a line\nshort\trefs/heads/x\n");
  ASSERT_EQ(refs.size(), 5u);
  EXPECT_EQ(resolve_ref(refs, "HEAD")->commit, kA);
  EXPECT_EQ(resolve_ref(refs, "main")->name, "refs/heads/main");
  // A branch wins over a tag of the same name, as in git.
  EXPECT_EQ(resolve_ref(refs, "v1")->commit, kD);
  // An annotated tag is peeled to its commit.
  EXPECT_EQ(resolve_ref(refs, "refs/tags/v1")->commit, kC);
  EXPECT_EQ(resolve_ref(refs, "refs/tags/v1")->name, "refs/tags/v1");
  EXPECT_FALSE(resolve_ref(refs, "gone"));
  EXPECT_EQ(ls_remote_patterns("main"),
            (std::vector<std::string>{"refs/heads/main", "refs/tags/main", "refs/tags/main^{}"}));
  EXPECT_EQ(ls_remote_patterns("HEAD"), std::vector<std::string>{"HEAD"});
}

TEST(GitText, CommitIds) {
  EXPECT_TRUE(is_commit_id(kA));
  EXPECT_TRUE(is_commit_id(std::string(64, 'f')));
  EXPECT_FALSE(is_commit_id("abc123"));
  EXPECT_FALSE(is_commit_id(std::string(39, 'a') + "g"));
}

TEST(GitText, AskpassAnswersAndCredentialLines) {
  auto up = parse_askpass("username=alice\r\npassword=p=a:s s\nother=1\n");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->username, "alice");
  EXPECT_EQ(up->password, "p=a:s s");
  EXPECT_FALSE(parse_askpass("username=alice\n"));
  auto line = parse_credentials_line("bob:se:cret\n", "git");
  EXPECT_EQ(line.username, "bob");
  EXPECT_EQ(line.password, "se:cret");
  line = parse_credentials_line("ghp_token", "git");
  EXPECT_EQ(line.username, "git");
  EXPECT_EQ(line.password, "ghp_token");
  EXPECT_EQ(credential_store_line("https://old@example.com:8443/org/repo.git", {"a b", "p@ss/:%"}),
            "https://a%20b:p%40ss%2F%3A%25@example.com:8443/org/repo.git");
  EXPECT_EQ(credential_store_line("no-scheme", {"a", "b"}), "");
  EXPECT_EQ(url_username("https://alice@host/x"), "alice");
  auto in_url = url_password("https://al%40ce:p%3Aw@host:1/x@y");
  ASSERT_TRUE(in_url);
  EXPECT_EQ(in_url->username, "al@ce");
  EXPECT_EQ(in_url->password, "p:w");
  EXPECT_FALSE(url_password("https://alice@host/x"));
  EXPECT_EQ(without_password("https://al%40ce:p%3Aw@host:1/x@y"), "https://al%40ce@host:1/x@y");
  EXPECT_EQ(without_password("https://host/x"), "https://host/x");
  EXPECT_EQ(url_username("https://host/x@y"), "");
}

TEST(GitText, RedactsPasswordsAndTokensInUrls) {
  EXPECT_EQ(redact("fetching https://alice:s3cret@host/r.git failed"),
            "fetching https://alice:***@host/r.git failed");
  EXPECT_EQ(redact("https://ghp_abc@github.com/x"), "https://***@github.com/x");
  EXPECT_EQ(redact("ssh://git@host:22/x and http://plain/y"),
            "ssh://git@host:22/x and http://plain/y");
}

TEST(GitText, ErrorSummaryKeepsWhatGitCallsErrors) {
  EXPECT_EQ(git_error_summary("remote: Counting objects: 3\nfatal: Authentication failed for "
                              "'https://u:p@h/r'\n"),
            "Authentication failed for 'https://u:***@h/r'");
  EXPECT_EQ(git_error_summary("No ED25519 host key is known for [127.0.0.1]:2222.\r\nHost key "
                              "verification failed.\r\nfatal: Could not read from remote "
                              "repository.\n"),
            "Could not read from remote repository.");
  EXPECT_EQ(git_error_summary(std::string(1000, 'x')).size(), 403u);
  EXPECT_EQ(shell_quote("a b'c"), "'a b'\\''c'");
}

TEST(GitText, HookIdsAreStableAndTellHooksApart) {
  HookConfig a;
  a.kind = HookConfig::Kind::kWebhook;
  a.url = "http://x/";
  HookConfig b = a;
  b.url = "http://y/";
  HookConfig c = a;
  c.timeout = std::chrono::seconds(99);  // not part of what the hook is
  EXPECT_EQ(hook_id(a).size(), 16u);
  EXPECT_NE(hook_id(a), hook_id(b));
  EXPECT_EQ(hook_id(a), hook_id(c));
}

}  // namespace
}  // namespace sidecar::sync
