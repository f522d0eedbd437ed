#include "filters/fault/config.h"

namespace sidecar::filters::fault {

std::shared_ptr<const void> parse(const YAML::Node& node, config::Reader& reader) {
  auto c = std::make_shared<Config>();
  const std::string where = "fault";
  if (!node || !node.IsMap()) {
    reader.error(node, "the fault filter needs a config mapping with delay and/or abort");
    return c;
  }
  reader.check_keys(node, where, {"delay", "abort", "max_active_faults"});
  if (auto d = node["delay"]) {
    const std::string dw = where + ".delay";
    if (reader.is_map(d, dw)) {
      reader.check_keys(d, dw, {"fixed_delay", "header_delay", "percentage"});
      Config::Delay delay;
      if (auto v = d["fixed_delay"]) reader.get_duration(v, dw + ".fixed_delay", delay.fixed);
      if (auto v = d["header_delay"]) reader.get_bool(v, dw + ".header_delay", delay.from_header);
      if (auto v = d["percentage"])
        reader.get_double(v, dw + ".percentage", delay.percentage, 0, 100);
      if (d["fixed_delay"] && delay.from_header) {
        reader.error(d, dw + " takes fixed_delay or header_delay, not both");
      } else if (!d["fixed_delay"] && !delay.from_header) {
        reader.error(d, dw + " needs fixed_delay or header_delay: true");
      }
      c->delay = delay;
    }
  }
  if (auto a = node["abort"]) {
    const std::string aw = where + ".abort";
    if (reader.is_map(a, aw)) {
      reader.check_keys(a, aw, {"http_status", "grpc_status", "header_abort", "percentage"});
      Config::Abort abort;
      uint32_t v32 = 0;
      if (auto v = a["http_status"]) {
        if (reader.get_count(v, aw + ".http_status", v32, 200, 599)) abort.http_status = int(v32);
      }
      if (auto v = a["grpc_status"]) {
        if (reader.get_count(v, aw + ".grpc_status", v32, 0, 16)) abort.grpc_status = int(v32);
      }
      if (auto v = a["header_abort"]) reader.get_bool(v, aw + ".header_abort", abort.from_header);
      if (auto v = a["percentage"])
        reader.get_double(v, aw + ".percentage", abort.percentage, 0, 100);
      const int kinds =
          (a["http_status"] ? 1 : 0) + (a["grpc_status"] ? 1 : 0) + (abort.from_header ? 1 : 0);
      if (kinds != 1)
        reader.error(a, aw + " takes one of http_status, grpc_status, header_abort: true");
      c->abort = abort;
    }
  }
  if (!node["delay"] && !node["abort"]) reader.error(node, "the fault filter needs delay or abort");
  if (auto v = node["max_active_faults"]) {
    reader.get_uint(v, where + ".max_active_faults", c->max_active_faults);
  }
  return c;
}

}  // namespace sidecar::filters::fault
