// libFuzzer target for what sidecar reads from an ACME server: its JSON
// objects (problem, directory, authorization, order, account), Retry-After,
// PEM chains, and base64url. The first byte chooses the reader.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "acme/jose.h"
#include "acme/messages.h"

using namespace sidecar::acme;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string why;
  switch (data[0] % 8) {
    case 0: {
      Problem p;
      if (parse_problem(in, p)) {
        check(!p.type.empty());
        check(!p.describe().empty());
        check(p.subproblems.size() <= 20);
      }
      break;
    }
    case 1: {
      Directory d;
      if (parse_directory(in, d, why)) check(!d.new_nonce.empty() && !d.new_order.empty());
      break;
    }
    case 2: {
      Authorization a;
      if (parse_authorization(in, a, why)) check(!a.status.empty() && a.challenges.size() <= 16);
      break;
    }
    case 3: {
      Order o;
      if (parse_order(in, o, why)) check(!o.status.empty() && !o.finalize.empty());
      break;
    }
    case 4: {
      Account a;
      parse_account(in, a, why);
      break;
    }
    case 5: {
      const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
      if (auto s = parse_retry_after(in, now)) {
        check(s->count() >= 0 && s->count() <= 366 * 86400);
      }
      break;
    }
    case 6:
      check(count_pem_certificates(in) <= in.size());
      break;
    case 7: {
      std::string out, back;
      base64url_decode(in, out);
      // Encoding then decoding gives the bytes back.
      check(base64url_decode(base64url(in), back) && back == in);
      break;
    }
  }
  return 0;
}
