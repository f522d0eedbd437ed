// Resource use of processes and cgroups, read from /proc and cgroupfs, for
// the process_* metrics of the sidecar itself and the sidecar_app_* metrics
// of the app it supervises or is pointed at.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stats/metric_writer.h"

namespace sidecar::stats {

struct ProcessUsage {
  double cpu_seconds = 0;       // user + system
  uint64_t resident_bytes = 0;  // RSS; for a cgroup, memory.current
  uint64_t virtual_bytes = 0;   // not for cgroups
  uint64_t open_fds = 0;
  uint64_t threads = 0;
  double start_time_seconds = 0;  // since the epoch; the earliest process
  uint64_t processes = 0;
};

// One process. Nothing when it does not exist (or cannot be read).
std::optional<ProcessUsage> read_process(pid_t pid);
// Every process in process group `pgid` (the supervised app and its children).
std::optional<ProcessUsage> read_process_group(pid_t pgid);
// Every process of the cgroup (v2) at `path`, e.g. /sys/fs/cgroup/app.slice:
// CPU from cpu.stat, memory from memory.current, fds and threads summed over
// cgroup.procs.
std::optional<ProcessUsage> read_cgroup(const std::string& path);
// The soft limit on open files of this process.
uint64_t max_fds();

// Writes the standard process_* metrics of this process (Prometheus client
// conventions: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds).
void collect_self(MetricWriter& w);

struct AppSample {
  std::string name;                   // the app label
  std::optional<ProcessUsage> usage;  // nothing: not running / not found
  std::optional<uint64_t> restarts;   // supervised apps only
};

// Writes sidecar_app_* metrics (up, cpu_seconds_total, resident_memory_bytes,
// open_fds, threads, processes, restarts_total) labelled app="<name>".
void collect_apps(MetricWriter& w, const std::vector<AppSample>& apps);

}  // namespace sidecar::stats
