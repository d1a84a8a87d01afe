// What the benchmarks report about the machine they ran on.
#pragma once

#include <fstream>
#include <string>
#include <utility>

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

}  // namespace labelloop::bench
