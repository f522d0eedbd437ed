// JSON parse + re-encode of log lines: the logs module's parser (simdjson
// On-Demand, raw tokens kept, copied out) against Boost.JSON (parse into a
// value, serialize). Not in ctest: run under the CPU lock,
//   build/bench/logship_json FILE       (JSON lines, e.g. from bench/logship.py)
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "logship/parsers.h"

using namespace sidecar::logship;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: logship_json FILE\n");
    return 64;
  }
  std::ifstream in(argv[1]);
  std::vector<std::string> lines;
  std::string line;
  size_t bytes = 0;
  while (std::getline(in, line) && lines.size() < 500000) {
    bytes += line.size() + 1;
    lines.push_back(line);
  }
  for (auto& l : lines) l.reserve(l.size() + kPadding);
  auto time = [&](const char* name, auto fn) {
    std::string out;
    const auto t0 = std::chrono::steady_clock::now();
    size_t produced = 0;
    for (int rep = 0; rep < 3; ++rep) {
      for (const auto& l : lines) {
        out.clear();
        fn(l, out);
        produced += out.size();
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-44s %7.0f MiB/s  %5.2f CPU-s/GiB  (%zu bytes out)\n", name,
                3.0 * bytes / s / (1 << 20), s / (3.0 * bytes / (1 << 30)), produced / 3);
  };
  JsonParser json;
  time("simdjson On-Demand, raw tokens (logs module)", [&](const std::string& l, std::string& out) {
    Batch b;
    b.begin(0);
    if (json.parse(std::string_view(l.data(), l.size()), b)) append_json(out, b, b.records[0]);
  });
  time("Boost.JSON parse + serialize", [&](const std::string& l, std::string& out) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(l, ec);
    if (!ec) out = boost::json::serialize(v);
  });
  return 0;
}
