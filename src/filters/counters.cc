#include "filters/counters.h"

#include <deque>
#include <map>
#include <mutex>

#include "stats/metric_writer.h"

namespace sidecar::filters {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Family {
  std::string help;
  std::map<Labels, FilterCounter*> samples;
};

struct Registry {
  std::mutex mutex;
  std::map<std::string, Family> families;
  std::deque<FilterCounter> counters;  // stable addresses
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: workers may count until exit
  return *r;
}

}  // namespace

FilterCounter& counter(const std::string& family, const std::string& help, Labels labels) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  Family& f = r.families[family];
  if (f.help.empty()) f.help = help;
  FilterCounter*& c = f.samples[std::move(labels)];
  if (c == nullptr) c = &r.counters.emplace_back();
  return *c;
}

void collect(stats::MetricWriter& w) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (const auto& [name, family] : r.families) {
    w.family(name, stats::MetricType::kCounter, family.help);
    for (const auto& [labels, c] : family.samples) {
      std::vector<stats::Label> l;
      l.reserve(labels.size());
      for (const auto& [k, v] : labels) l.push_back({k, v});
      w.sample(l, static_cast<double>(c->value.load(std::memory_order_relaxed)));
    }
  }
}

}  // namespace sidecar::filters
