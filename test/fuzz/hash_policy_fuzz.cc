// libFuzzer target for what the route hash_policy reads from a request
// (src/proxy/route_balancing.h): Cookie headers, query strings, header
// values. Checks that parsing never reads outside its input, that a found
// value lies inside the input, and that a key is a pure function of it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/http1_parser.h"
#include "proxy/route_balancing.h"

using namespace sidecar;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // First line: a path with a query; the rest: header lines of a request.
  const size_t nl = in.find('\n');
  const std::string_view path = in.substr(0, nl);
  const std::string_view rest = nl == std::string_view::npos ? "" : in.substr(nl + 1);
  for (std::string_view name : {"u", "user", "", "a b"}) {
    if (auto v = proxy::find_query_parameter(path, name)) check(inside(*v, path));
  }
  std::string raw = "GET / HTTP/1.1\r\nHost: h\r\n";
  raw.append(rest);
  raw.append("\r\n\r\n");
  http::RequestParser parser;
  http::RequestHead head;
  if (parser.feed(raw, head).status != http::HeadResult::kDone) return 0;
  for (std::string_view name : {"sticky", "a", ""}) {
    if (auto v = proxy::find_cookie(head, name)) check(inside(*v, raw));
  }
  std::vector<config::HashPolicy> policy(4);
  policy[0].kind = config::HashPolicy::Kind::kHeader;
  policy[0].name = "x-user";
  policy[1].kind = config::HashPolicy::Kind::kCookie;
  policy[1].name = "sticky";
  policy[1].ttl = std::chrono::seconds(60);
  policy[2].kind = config::HashPolicy::Kind::kQueryParameter;
  policy[2].name = "u";
  policy[3].kind = config::HashPolicy::Kind::kSourceIp;
  const proxy::HashInput input{&head, path, "10.0.0.1", 42};
  const proxy::HashResult a = proxy::compute_hash(policy, input);
  const proxy::HashResult b = proxy::compute_hash(policy, input);
  check(a.hash == b.hash && a.set_cookie == b.set_cookie);
  check(a.hash.has_value());  // the source address always yields
  return 0;
}
