#include "core/cpu.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace sidecar::core {
namespace {

namespace fs = std::filesystem;

class FakeCgroup {
 public:
  FakeCgroup() : root_(fs::temp_directory_path() / ("cgroup-test-" + std::to_string(::getpid()))) {
    fs::remove_all(root_);
    fs::create_directories(root_ / "cpu");
  }
  ~FakeCgroup() { fs::remove_all(root_); }
  void write(const std::string& file, const std::string& text) {
    std::ofstream(root_ / file) << text << "\n";
  }
  std::string root() const { return root_.string(); }

 private:
  fs::path root_;
};

TEST(Cpu, NoQuotaMeansAffinity) {
  FakeCgroup cg;
  cg.write("cpu.max", "max 100000");
  EXPECT_EQ(cgroup_cpu_quota(cg.root()), 0);
  EXPECT_GE(available_cpus(cg.root()), 1u);
  EXPECT_LE(available_cpus(cg.root()), std::thread::hardware_concurrency());
}

TEST(Cpu, CgroupV2QuotaRoundsUp) {
  FakeCgroup cg;
  cg.write("cpu.max", "150000 100000");
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota(cg.root()), 1.5);
  EXPECT_EQ(available_cpus(cg.root()), std::min(2u, std::thread::hardware_concurrency()));
  cg.write("cpu.max", "50000 100000");
  EXPECT_EQ(available_cpus(cg.root()), 1u);
}

TEST(Cpu, CgroupV1Quota) {
  FakeCgroup cg;
  cg.write("cpu/cpu.cfs_quota_us", "100000");
  cg.write("cpu/cpu.cfs_period_us", "100000");
  EXPECT_DOUBLE_EQ(cgroup_cpu_quota(cg.root()), 1.0);
  EXPECT_EQ(available_cpus(cg.root()), 1u);
  cg.write("cpu/cpu.cfs_quota_us", "-1");
  EXPECT_EQ(cgroup_cpu_quota(cg.root()), 0);
}

}  // namespace
}  // namespace sidecar::core
