// An input's filter chain, run on each record after parsing, in config
// order: add, rename, remove fields; grep (keep or drop by a field's
// regex); sample; a rate limit per source; redact (regex matches replaced).
//
// Thread safety: one thread (the shipper's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "logship/config.h"
#include "logship/record.h"

namespace sidecar::logship {

class Filters {
 public:
  enum class Verdict { kKeep, kGrep, kSampled, kRateLimited };
  // Per source state (the rate limit's window).
  struct SourceState {
    std::vector<std::pair<int64_t, uint32_t>> windows;  // start (ns), records in it
  };

  explicit Filters(std::vector<FilterConfig> configs);
  bool empty() const { return configs_.empty(); }
  // Runs the chain on the last record of `b`; the caller drops it unless kKeep.
  Verdict apply(Batch& b, SourceState& state, int64_t now_ns);
  // The names of the reasons, for metrics.
  static const char* reason(Verdict v);

 private:
  std::vector<FilterConfig> configs_;
  uint64_t random_;
  std::string scratch_;
  std::string replaced_;
};

}  // namespace sidecar::logship
