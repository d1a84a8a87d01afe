// What the benchmarks report about the machine they ran on.
#pragma once

#include <time.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace labelloop::bench {

// The machine's busy and total CPU time so far (jiffies of every core, from /proc/stat):
// whether a run saturates the cores, or leaves them idle while calls wait.
inline std::pair<double, double> MachineCpu() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double v[8] = {};
  f >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
  double total = 0;
  for (double x : v) total += x;
  return {total - v[3] - v[4], total};  // idle and iowait are not busy
}

// Percent of the machine's CPU time that was busy between two MachineCpu() samples.
inline double BusyPercent(std::pair<double, double> before, std::pair<double, double> after) {
  const double total = after.second - before.second;
  return total > 0 ? 100.0 * (after.first - before.first) / total : 0.0;
}

// CPU time (µs) that the calling thread takes for one fixed piece of work (integer
// arithmetic and reads spread over 256 KiB, about 2 ms). The work never changes and only
// this thread's CPU time is counted, not time spent waiting for a core, so on a machine of
// constant speed the figure is constant. On a shared VM it is not: the host's other
// tenants and the sibling core slow it, and every latency a benchmark measures with it.
inline double FixedWorkMicros() {
  static std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(64 * 1024);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>(i * 2654435761u);
    return t;
  }();
  timespec start{};
  timespec end{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 300'000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x += table[x & (table.size() - 1)];
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
  // The result feeds the table, so the loop cannot be optimised away.
  table[x & (table.size() - 1)] ^= static_cast<uint32_t>(x);
  return static_cast<double>(end.tv_sec - start.tv_sec) * 1e6 +
         static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e3;
}

}  // namespace labelloop::bench
