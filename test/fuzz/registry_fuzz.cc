// libFuzzer target for what sidecar reads from etcd's JSON gateway
// (registry/etcd_json.h): range, lease, token and watch answers, error
// documents, instance values registered by anyone, and base64. The first
// byte chooses the reader. Invariants: decoded values re-encode to what was
// read (base64, instance documents).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "registry/etcd_json.h"

using namespace sidecar::registry::etcd;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  Error e;
  switch (data[0] % 7) {
    case 0: {
      RangeResult r;
      if (parse_range(in, r, e)) {
        for (const KeyValue& kv : r.kvs) check(kv.key.size() <= in.size());
      }
      break;
    }
    case 1: {
      LeaseResult l;
      parse_lease(in, l, e);
      break;
    }
    case 2: {
      std::string token;
      if (parse_token(in, token, e)) check(!token.empty());
      break;
    }
    case 3: {
      WatchResponse w;
      parse_watch(in, w, e);
      break;
    }
    case 4: {
      parse_error(in, e);
      break;
    }
    case 5: {
      Instance i;
      if (decode_instance(in, i)) {
        check(i.port != 0 && !i.address.empty());
        Instance again;
        check(decode_instance(encode_instance(i), again) && again == i);
      }
      break;
    }
    case 6: {
      std::string out;
      if (base64_decode(in, out)) {
        std::string back;
        check(base64_decode(base64_encode(out), back) && back == out);
      }
      break;
    }
  }
  return 0;
}
