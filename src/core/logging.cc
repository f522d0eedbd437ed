#include "core/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace sidecar::core {
namespace {

bool parse_level(std::string_view name, spdlog::level::level_enum& out) {
  static constexpr std::string_view kNames[] = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (name == kNames[i]) {
      out = static_cast<spdlog::level::level_enum>(i);
      return true;
    }
  }
  if (name == "warning") {
    out = spdlog::level::warn;
    return true;
  }
  return false;
}

}  // namespace

bool init_logging(std::string_view level) {
  spdlog::level::level_enum lvl;
  if (!parse_level(level, lvl)) return false;
  auto logger = spdlog::stderr_logger_mt("sidecar");
  logger->set_pattern("[%Y-%m-%dT%H:%M:%S.%e%z] [%l] %v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return true;
}

bool set_log_level(std::string_view level) {
  spdlog::level::level_enum lvl;
  if (!parse_level(level, lvl)) return false;
  spdlog::set_level(lvl);
  return true;
}

}  // namespace sidecar::core
