// How many CPUs this process may use.
#pragma once

#include <string>

namespace sidecar::core {

// The number of CPUs the process may run on: the smaller of the CPUs in its
// affinity mask (sched_getaffinity) and its cgroup CPU quota rounded up
// (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us). At least 1.
// `cgroup_root` is where the cgroup filesystem is mounted (a parameter so
// tests can point it at a fake tree).
unsigned available_cpus(const std::string& cgroup_root = "/sys/fs/cgroup");

// The CPU quota of the cgroup at `cgroup_root`, in CPUs, or 0 when none is
// set. Reads cgroup v2 "cpu.max" first, then v1 "cpu/cpu.cfs_quota_us".
double cgroup_cpu_quota(const std::string& cgroup_root);

}  // namespace sidecar::core
