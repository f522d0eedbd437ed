#include "core/cpu.h"

#include <sched.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace sidecar::core {
namespace {

bool read_first_line(const std::string& path, std::string& line) {
  std::ifstream in(path);
  return static_cast<bool>(std::getline(in, line));
}

}  // namespace

double cgroup_cpu_quota(const std::string& cgroup_root) {
  std::string line;
  // cgroup v2: "max 100000" or "<quota> <period>" (microseconds).
  if (read_first_line(cgroup_root + "/cpu.max", line)) {
    std::istringstream in(line);
    std::string quota;
    long long period = 0;
    in >> quota >> period;
    if (quota == "max" || period <= 0) return 0;
    try {
      return static_cast<double>(std::stoll(quota)) / static_cast<double>(period);
    } catch (const std::exception&) {
      return 0;
    }
  }
  // cgroup v1: quota is -1 when unlimited.
  std::string quota_line, period_line;
  if (read_first_line(cgroup_root + "/cpu/cpu.cfs_quota_us", quota_line) &&
      read_first_line(cgroup_root + "/cpu/cpu.cfs_period_us", period_line)) {
    try {
      long long quota = std::stoll(quota_line);
      long long period = std::stoll(period_line);
      if (quota > 0 && period > 0) return static_cast<double>(quota) / static_cast<double>(period);
    } catch (const std::exception&) {
    }
  }
  return 0;
}

unsigned available_cpus(const std::string& cgroup_root) {
  unsigned cpus = 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    cpus = static_cast<unsigned>(CPU_COUNT(&set));
  }
  const double quota = cgroup_cpu_quota(cgroup_root);
  if (quota > 0) {
    const auto limit = static_cast<unsigned>(std::ceil(quota));
    if (limit < cpus) cpus = limit;
  }
  return cpus < 1 ? 1 : cpus;
}

}  // namespace sidecar::core
