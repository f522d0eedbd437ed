#include "filters/stats.h"

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "stats/metric_writer.h"

namespace sidecar::filters {
namespace {

struct Family {
  std::string help;
  // label values (in the family's label order) -> counter
  std::map<std::vector<std::pair<std::string, std::string>>, std::unique_ptr<FilterCounter>>
      samples;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, Family, std::less<>> families;
};

Registry& registry() {
  static auto* r = new Registry();  // never destroyed: workers may count during exit
  return *r;
}

}  // namespace

FilterCounter* counter(
    std::string_view name, std::string_view help,
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels) {
  Registry& r = registry();
  std::vector<std::pair<std::string, std::string>> key;
  key.reserve(labels.size());
  for (const auto& [n, v] : labels) key.emplace_back(n, v);
  std::lock_guard lock(r.mu);
  auto it = r.families.find(name);
  if (it == r.families.end()) it = r.families.emplace(std::string(name), Family{}).first;
  Family& f = it->second;
  if (f.help.empty()) f.help = help;
  auto& slot = f.samples[std::move(key)];
  if (!slot) slot = std::make_unique<FilterCounter>();
  return slot.get();
}

void collect(stats::MetricWriter& w) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<stats::Label> labels;
  for (const auto& [name, f] : r.families) {
    w.family(name, stats::MetricType::kCounter, f.help);
    for (const auto& [key, value] : f.samples) {
      labels.clear();
      for (const auto& [n, v] : key) labels.push_back({n, v});
      w.sample(labels, static_cast<double>(value->get()));
    }
  }
}

FilterCounter* RouteCounter::get(std::string_view listener, std::string_view route) {
  if (counter_ == nullptr || listener != listener_ || route != route_) {
    listener_.assign(listener);
    route_.assign(route);
    counter_ = counter(name_, help_, {{"listener", listener}, {"route", route}, {label_, value_}});
  }
  return counter_;
}

}  // namespace sidecar::filters
