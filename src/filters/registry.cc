#include "filters/registry.h"

#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>

#include "config/registry.h"
#include "filters/compressor/filter.h"
#include "filters/fault/filter.h"
#include "filters/headers/filter.h"
#include "filters/local_rate_limit/filter.h"
#include "filters/rate_limit/filter.h"

namespace sidecar::filters {
namespace {

struct Entry {
  config::Parser parse;
  std::function<std::shared_ptr<const http::HttpFilterFactory>(std::shared_ptr<const void>)> make;
};

// Every built-in filter, by its config name.
const std::map<std::string, Entry>& builtin() {
  static const std::map<std::string, Entry> filters = {
      {"headers",
       {headers::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<headers::Factory>(
              std::static_pointer_cast<const headers::Config>(std::move(typed)));
        }}},
      {"local_rate_limit",
       {local_rate_limit::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<local_rate_limit::Factory>(
              std::static_pointer_cast<const local_rate_limit::Config>(std::move(typed)));
        }}},
      {"compressor",
       {compressor::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<compressor::Factory>(
              std::static_pointer_cast<const compressor::Config>(std::move(typed)));
        }}},
      {"fault",
       {fault::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<fault::Factory>(
              std::static_pointer_cast<const fault::Config>(std::move(typed)));
        }}},
      {"rate_limit",
       {rate_limit::parse,
        [](std::shared_ptr<const void> typed) {
          return std::make_shared<rate_limit::Factory>(
              std::static_pointer_cast<const rate_limit::Config>(std::move(typed)));
        }}},
  };
  return filters;
}

}  // namespace

void register_builtin() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (const auto& [name, entry] : builtin()) config::register_filter(name, entry.parse);
  });
}

std::shared_ptr<const http::HttpFilterFactory> make_factory(const config::FilterConfig& filter) {
  auto it = builtin().find(filter.name);
  if (it == builtin().end()) throw std::logic_error("unknown filter " + filter.name);
  return it->second.make(filter.typed);
}

}  // namespace sidecar::filters
