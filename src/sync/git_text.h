// The text formats the git source reads and writes, kept apart from the
// processes so that they are unit tested and fuzzed (test/fuzz/
// sync_text_fuzz.cc): `git ls-remote` output, askpass answers, git's error
// output, credential-store lines, and shell quoting for core.sshCommand.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sidecar::sync {

// One line of `git ls-remote`: "<id>\t<name>".
struct RemoteRef {
  std::string id;    // 40 (SHA-1) or 64 (SHA-256) hex digits
  std::string name;  // "HEAD", "refs/heads/main", "refs/tags/v1^{}" (peeled)
};

// Parses `git ls-remote` output; lines that do not have the shape are skipped.
std::vector<RemoteRef> parse_ls_remote(std::string_view out);

// The names to ask `git ls-remote` for, for a configured ref that is not a
// commit id: HEAD; or refs/heads/REF, refs/tags/REF (and its peeled form);
// or REF itself when it starts with "refs/".
std::vector<std::string> ls_remote_patterns(const std::string& ref);

// What `ref` points to among `refs`, in git's order of preference (HEAD;
// a branch; a tag, peeled to its commit; a full ref name). `name` gets the
// remote ref to fetch. Nothing when the remote does not have it.
struct Resolved {
  std::string name;    // the remote ref ("refs/heads/main")
  std::string commit;  // what it points to, annotated tags peeled
};
std::optional<Resolved> resolve_ref(const std::vector<RemoteRef>& refs, const std::string& ref);

// 40 or 64 hex digits (a commit id, not an abbreviation).
bool is_commit_id(std::string_view s);

// An askpass URL's answer: "key=value" lines (git-credential format) with
// at least username and password. Nothing when either is missing.
struct UserPassword {
  std::string username;
  std::string password;
};
std::optional<UserPassword> parse_askpass(std::string_view body);

// The first line of a credentials_file: "user:password", or a token alone
// (then the username is `default_user`).
UserPassword parse_credentials_line(std::string_view line, const std::string& default_user);

// A line for git-credential-store: the URL with the username and password
// (percent-encoded) put in. Empty when `url` has no "scheme://host".
std::string credential_store_line(std::string_view url, const UserPassword& up);

// The username in a URL ("https://alice@host/x" -> "alice"), or "".
std::string url_username(std::string_view url);

// The username and password in a URL ("https://alice:pw@host/x"),
// percent-decoded; nothing without a password.
std::optional<UserPassword> url_password(std::string_view url);

// `url` without the password ("https://alice@host/x").
std::string without_password(std::string_view url);

// `text` with the password of every "scheme://user:password@" replaced by
// "***" (error messages and logs never show one).
std::string redact(std::string_view text);

// The lines of git's stderr that say what went wrong ("fatal: ...",
// "error: ...", ssh's messages), joined with "; ", without progress
// lines; at most `max` bytes.
std::string git_error_summary(std::string_view err, size_t max = 400);

// `s` quoted for sh (core.sshCommand is run by the shell).
std::string shell_quote(std::string_view s);

}  // namespace sidecar::sync
