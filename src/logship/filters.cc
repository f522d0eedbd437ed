#include "logship/filters.h"

#include <re2/re2.h>

#include <chrono>

namespace sidecar::logship {

Filters::Filters(std::vector<FilterConfig> configs)
    : configs_(std::move(configs)),
      random_(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) |
              1) {}

const char* Filters::reason(Verdict v) {
  switch (v) {
    case Verdict::kGrep:
      return "grep";
    case Verdict::kSampled:
      return "sampled";
    case Verdict::kRateLimited:
      return "rate_limited";
    default:
      return "kept";
  }
}

Filters::Verdict Filters::apply(Batch& b, SourceState& state, int64_t now_ns) {
  if (state.windows.size() < configs_.size()) state.windows.resize(configs_.size());
  for (size_t i = 0; i < configs_.size(); ++i) {
    const FilterConfig& c = configs_[i];
    Record& r = b.last();
    switch (c.kind) {
      case FilterConfig::Kind::kAdd:
        for (const auto& [k, v] : c.pairs) b.add(k, v, ValueKind::kString);
        break;
      case FilterConfig::Kind::kRename:
        for (const auto& [from, to] : c.pairs) {
          if (Field* f = b.find(r, from)) {
            f->key = b.append(to);
            f->key_len = static_cast<uint32_t>(to.size());
            f->key_escaped = false;
          }
        }
        break;
      case FilterConfig::Kind::kRemove:
        for (const auto& k : c.keys) {
          if (Field* f = b.find(r, k)) {
            b.fields.erase(b.fields.begin() + (f - b.fields.data()));
            --r.field_count;
          }
        }
        break;
      case FilterConfig::Kind::kGrep: {
        const Field* f = b.find(r, c.field);
        bool match = false;
        if (f != nullptr) {
          const std::string_view v = b.text(*f, scratch_);
          match = re2::RE2::PartialMatch(re2::StringPiece(v.data(), v.size()), *c.regex);
        }
        if (match == c.exclude) return Verdict::kGrep;
        break;
      }
      case FilterConfig::Kind::kSample: {
        random_ ^= random_ << 13;
        random_ ^= random_ >> 7;
        random_ ^= random_ << 17;
        if (static_cast<double>(random_ >> 11) * 0x1.0p-53 >= c.rate) return Verdict::kSampled;
        break;
      }
      case FilterConfig::Kind::kRateLimit: {
        auto& [start, count] = state.windows[i];
        const int64_t per = std::chrono::nanoseconds(c.per).count();
        if (now_ns - start >= per) {
          start = now_ns;
          count = 0;
        }
        if (count >= c.records) return Verdict::kRateLimited;
        ++count;
        break;
      }
      case FilterConfig::Kind::kRedact:
        for (uint32_t k = 0; k < r.field_count; ++k) {
          Field& f = b.fields[r.first_field + k];
          if (f.kind != ValueKind::kString && f.kind != ValueKind::kEscaped) continue;
          if (!c.fields.empty()) {
            bool listed = false;
            for (const auto& name : c.fields) listed = listed || b.key(f) == name;
            if (!listed) continue;
          }
          const std::string_view v = b.text(f, scratch_);
          if (!re2::RE2::PartialMatch(re2::StringPiece(v.data(), v.size()), *c.regex)) continue;
          replaced_.assign(v);
          re2::RE2::GlobalReplace(&replaced_, *c.regex, c.replacement);
          f.value = b.append(replaced_);
          f.value_len = static_cast<uint32_t>(replaced_.size());
          f.kind = ValueKind::kString;
        }
        break;
    }
  }
  return Verdict::kKeep;
}

}  // namespace sidecar::logship
