// libFuzzer target for the text formats of the sync module's git source
// (src/sync/git_text.h): `git ls-remote` output, askpass answers,
// credentials lines and URLs, git's error output. Checks the properties the
// code relies on: parsed ids are commit ids, a resolved ref is one of the
// parsed ones, percent-encoding round-trips, redaction is idempotent and
// leaves no password, summaries stay bounded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sync/git_text.h"

using namespace sidecar::sync;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto refs = parse_ls_remote(text);
  for (const RemoteRef& r : refs) check(is_commit_id(r.id) && !r.name.empty());
  // The first line names the ref to look for.
  const std::string ref(text.substr(0, std::min<size_t>(text.find('\n'), 64)));
  if (auto resolved = resolve_ref(refs, ref.empty() ? "HEAD" : ref)) {
    bool found = false;
    for (const RemoteRef& r : refs) found = found || r.id == resolved->commit;
    check(found && is_commit_id(resolved->commit));
  }
  for (const std::string& p : ls_remote_patterns(ref.empty() ? "HEAD" : ref)) check(!p.empty());

  if (auto up = parse_askpass(text)) {
    const std::string url = credential_store_line("https://host/repo.git", *up);
    const auto back = url_password(url);
    check(back && back->username == up->username && back->password == up->password);
    check(!url_password(without_password(url)));
  }
  const UserPassword line = parse_credentials_line(ref, "git");
  const std::string store = credential_store_line("http://h:1/p", line);
  const auto back = url_password(store);
  check(back && back->username == line.username && back->password == line.password);

  check(url_password(redact(store))->password == "***");
  const std::string redacted = redact(text);
  check(redact(redacted) == redacted);
  url_username(text);
  without_password(text);
  check(git_error_summary(text, 100).size() <= 103);
  shell_quote(text);
  return 0;
}
