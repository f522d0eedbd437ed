#include "stats/process.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/file_version.h"

namespace sidecar::stats {
namespace {

double clock_ticks() { return static_cast<double>(::sysconf(_SC_CLK_TCK)); }

// Seconds since the epoch at which the system booted (btime in /proc/stat).
double boot_time() {
  static const double btime = [] {
    std::ifstream in("/proc/stat");
    std::string key;
    double value = 0;
    while (in >> key) {
      if (key == "btime") {
        in >> value;
        break;
      }
      in.ignore(1 << 20, '\n');
    }
    return value;
  }();
  return btime;
}

uint64_t count_fds(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  uint64_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

struct Stat {
  pid_t pgrp = 0;
  double cpu_seconds = 0;
  uint64_t threads = 0;
  double start_seconds = 0;
  uint64_t virtual_bytes = 0;
  uint64_t resident_bytes = 0;
};

// Fields of /proc/<pid>/stat after the command (which may contain spaces).
std::optional<Stat> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;
  std::string tok;
  while (fields >> tok) f.push_back(tok);
  // f[0] is field 3 (state): field N is f[N - 3].
  if (f.size() < 22) return std::nullopt;
  Stat s;
  s.pgrp = static_cast<pid_t>(std::atoll(f[2].c_str()));
  const double ticks = clock_ticks();
  s.cpu_seconds = (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / ticks;
  s.threads = std::strtoull(f[17].c_str(), nullptr, 10);
  s.start_seconds = boot_time() + std::atof(f[19].c_str()) / ticks;
  s.virtual_bytes = std::strtoull(f[20].c_str(), nullptr, 10);
  s.resident_bytes =
      std::strtoull(f[21].c_str(), nullptr, 10) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return s;
}

void add(ProcessUsage& u, const Stat& s, pid_t pid) {
  u.cpu_seconds += s.cpu_seconds;
  u.resident_bytes += s.resident_bytes;
  u.virtual_bytes += s.virtual_bytes;
  u.threads += s.threads;
  u.open_fds += count_fds(pid);
  if (u.processes == 0 || s.start_seconds < u.start_time_seconds) {
    u.start_time_seconds = s.start_seconds;
  }
  ++u.processes;
}

}  // namespace

std::optional<ProcessUsage> read_process(pid_t pid) {
  auto s = read_stat(pid);
  if (!s) return std::nullopt;
  ProcessUsage u;
  add(u, *s, pid);
  return u;
}

std::optional<ProcessUsage> read_process_group(pid_t pgid) {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return std::nullopt;
  ProcessUsage u;
  while (dirent* e = ::readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atoll(e->d_name));
    if (pid <= 0) continue;
    auto s = read_stat(pid);
    if (s && s->pgrp == pgid) add(u, *s, pid);
  }
  ::closedir(d);
  if (u.processes == 0) return std::nullopt;
  return u;
}

std::optional<ProcessUsage> read_cgroup(const std::string& path) {
  std::string procs;
  if (!core::read_file(path + "/cgroup.procs", procs)) return std::nullopt;
  ProcessUsage u;
  std::istringstream in(procs);
  pid_t pid;
  while (in >> pid) {
    if (auto s = read_stat(pid)) add(u, *s, pid);
  }
  std::string text;
  if (core::read_file(path + "/cpu.stat", text)) {
    std::istringstream cs(text);
    std::string key;
    uint64_t value;
    while (cs >> key >> value) {
      if (key == "usage_usec") u.cpu_seconds = static_cast<double>(value) / 1e6;
    }
  }
  if (core::read_file(path + "/memory.current", text))
    u.resident_bytes = std::strtoull(text.c_str(), nullptr, 10);
  u.virtual_bytes = 0;
  return u;
}

uint64_t max_fds() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  return r.rlim_cur;
}

void collect_self(MetricWriter& w) {
  const auto self = read_process(::getpid());
  if (!self) return;
  w.family("process_cpu_seconds_total", MetricType::kCounter,
           "Total user and system CPU time spent in seconds.");
  w.sample({}, self->cpu_seconds);
  w.family("process_resident_memory_bytes", MetricType::kGauge, "Resident memory size in bytes.");
  w.sample({}, static_cast<double>(self->resident_bytes));
  w.family("process_virtual_memory_bytes", MetricType::kGauge, "Virtual memory size in bytes.");
  w.sample({}, static_cast<double>(self->virtual_bytes));
  w.family("process_open_fds", MetricType::kGauge, "Number of open file descriptors.");
  w.sample({}, static_cast<double>(self->open_fds));
  w.family("process_max_fds", MetricType::kGauge, "Maximum number of open file descriptors.");
  w.sample({}, static_cast<double>(max_fds()));
  w.family("process_start_time_seconds", MetricType::kGauge,
           "Start time of the process since unix epoch in seconds.");
  w.sample({}, self->start_time_seconds);
}

void collect_apps(MetricWriter& w, const std::vector<AppSample>& apps) {
  if (apps.empty()) return;
  auto each = [&](std::string_view name, MetricType type, std::string_view help, auto get,
                  bool only_running) {
    w.family(name, type, help);
    for (const AppSample& a : apps) {
      if (only_running && !a.usage) continue;
      const Label labels[] = {{"app", a.name}};
      w.sample(labels, get(a));
    }
  };
  each(
      "sidecar_app_up", MetricType::kGauge, "1 when the app's processes are running.",
      [](const AppSample& a) { return a.usage ? 1.0 : 0.0; }, false);
  each(
      "sidecar_app_cpu_seconds_total", MetricType::kCounter,
      "CPU time of the app's processes (user and system), in seconds.",
      [](const AppSample& a) { return a.usage->cpu_seconds; }, true);
  each(
      "sidecar_app_resident_memory_bytes", MetricType::kGauge,
      "Resident memory of the app's processes (a cgroup's memory.current), in bytes.",
      [](const AppSample& a) { return static_cast<double>(a.usage->resident_bytes); }, true);
  each(
      "sidecar_app_open_fds", MetricType::kGauge, "Open file descriptors of the app's processes.",
      [](const AppSample& a) { return static_cast<double>(a.usage->open_fds); }, true);
  each(
      "sidecar_app_threads", MetricType::kGauge, "Threads of the app's processes.",
      [](const AppSample& a) { return static_cast<double>(a.usage->threads); }, true);
  each(
      "sidecar_app_processes", MetricType::kGauge, "Processes of the app.",
      [](const AppSample& a) { return static_cast<double>(a.usage->processes); }, true);
  w.family("sidecar_app_restarts_total", MetricType::kCounter,
           "Times the supervised app was restarted.");
  for (const AppSample& a : apps) {
    if (!a.restarts) continue;
    const Label labels[] = {{"app", a.name}};
    w.sample(labels, static_cast<double>(*a.restarts));
  }
}

}  // namespace sidecar::stats
